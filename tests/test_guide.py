"""The guide classifier (--guide) and training phases started by --resume."""

from __future__ import annotations

import json

import pytest
import torch

from gan_studio.app.training_manager import loss_figure
from gan_studio.evaluation.classifier import EvaluatorClassifier, save_evaluator
from gan_studio.training.loop import Trainer, train
from tests.conftest import TINY_MODEL_ARGS, run_cli
from tests.test_training import _config


def _make_guide(path, class_names, resolution=32):
    torch.manual_seed(0)
    model = EvaluatorClassifier(class_names, arch="mobilenet_v3_small", resolution=resolution, stem_stride=2)
    # Random weights, but batch-norm statistics that fit them (else every output is ~constant).
    model.recalibrate_batchnorm(torch.randint(0, 256, (64, 3, resolution, resolution), dtype=torch.uint8))
    training = {  # what train-evaluator records (here: random weights, for tests)
        "data": {"source": "demo", "resolution": resolution},
        "arch": "mobilenet_v3_small",
        "stem_stride": 2,
        "steps": 0,
        "batch_size": 64,
        "lr": 0.002,
        "augment": "classic",
        "seed": 3,
    }
    return save_evaluator(model.eval(), path, training=training)


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory, demo_dir):
    names = sorted(p.name for p in demo_dir.iterdir() if p.is_dir())
    return _make_guide(tmp_path_factory.mktemp("guide") / "guide", names)


def test_guide_steers_only_the_generator(tmp_path, demo_dir, guide_dir):
    """Same seed with and without the guide: D's step is identical, G's differs, the guide is frozen,
    and the guide's cross-entropy and accuracy on the fakes are reported."""
    # Each trainer seeds the global RNG when built: build and step one before the other.
    plain = Trainer(_config(demo_dir, tmp_path / "plain", 1), progress=False)
    stats_plain = plain.train_step()
    guided = Trainer(
        _config(demo_dir, tmp_path / "guided", 1, guide=str(guide_dir), guide_weight=5.0), progress=False
    )
    frozen = {k: v.clone() for k, v in guided.guide.state_dict().items()}
    stats = guided.train_step()
    assert stats_plain["loss_guide"] == 0.0
    assert stats["loss_guide"] > 0 and 0 <= stats["acc_guide_fake"] <= 1
    for (name, a), b in zip(plain.D.state_dict().items(), guided.D.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)  # as resume: float noise only
    # G's gradients (left in .grad by the step) carry the guide's term on top of D's.
    grads = [(a.grad, b.grad) for a, b in zip(plain.G.parameters(), guided.G.parameters())]
    gap = max((a - b).abs().max().item() for a, b in grads)
    assert gap > 1e-3 * max(a.abs().max().item() for a, _ in grads)
    assert all(p.grad is None for p in guided.guide.parameters())
    for key, value in guided.guide.state_dict().items():
        assert torch.equal(value, frozen[key]), key  # batch-norm statistics untouched too (eval mode)


def test_guide_confidence_caps_the_push(tmp_path, demo_dir, guide_dir):
    """--guide-confidence c: a fake whose class probability is already >= c adds nothing, so the
    loss is mean(relu(CE + log c)); with a c below every probability G gets D's gradient only."""
    runs = {}
    for name, confidence in [("plain", None), ("ce", 1.0), ("cap", 0.15), ("off", 1e-6)]:
        extra = {}
        if confidence is not None:
            extra = {"guide": str(guide_dir), "guide_weight": 5.0, "guide_confidence": confidence}
        trainer = Trainer(_config(demo_dir, tmp_path / name, 1, **extra), progress=False)
        seen = {}
        real_batch = trainer._real_batch
        trainer._real_batch = lambda f=real_batch, keep=seen: keep.setdefault("batch", f())
        if confidence is not None:
            forward = trainer.guide.forward
            trainer.guide.forward = lambda x, f=forward, keep=seen: keep.setdefault("logits", f(x))
        stats = trainer.train_step()
        grads = [p.grad.clone() for p in trainer.G.parameters() if p.grad is not None]
        runs[name] = (stats, grads, seen)

    # Same seed, same step: every guided run sees the same fakes and guide outputs.
    logits, labels = runs["ce"][2]["logits"].float(), runs["ce"][2]["batch"][1]
    torch.testing.assert_close(runs["cap"][2]["logits"].float(), logits)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert runs["ce"][0]["loss_guide"] == pytest.approx(ce.mean().item(), rel=1e-5)
    capped = torch.relu(ce + torch.log(torch.tensor(0.15))).mean().item()
    assert 0 < capped < ce.mean().item()  # some fakes already pass 0.15, some do not
    assert runs["cap"][0]["loss_guide"] == pytest.approx(capped, rel=1e-5)
    assert runs["off"][0]["loss_guide"] == 0.0
    for a, b in zip(runs["plain"][1], runs["off"][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)

    with pytest.raises(ValueError, match="guide-confidence"):
        Trainer(
            _config(demo_dir, tmp_path / "bad", 1, guide=str(guide_dir), guide_weight=1.0, guide_confidence=0)
        )
    with pytest.raises(ValueError, match="needs --guide"):
        Trainer(_config(demo_dir, tmp_path / "bad2", 1, guide_confidence=0.9))


def test_guide_mmd_target_penalises_a_collapsed_class(tmp_path, demo_dir, guide_dir):
    """--guide-target mmd: a class whose fakes all sit on one point of the real distribution scores
    worse than fakes spread like the reals, and a training step with it moves G."""
    trainer = Trainer(
        _config(demo_dir, tmp_path / "mmd", 1, guide=str(guide_dir), guide_weight=1.0, guide_target="mmd"),
        progress=False,
    )
    stats = trainer.train_step()
    assert stats["loss_guide"] != 0 and abs(stats["loss_guide"]) < float("inf")  # unbiased: may dip below 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.G.parameters())
    assert len(trainer.terms["guide"].real_features) == len(trainer.class_names)

    torch.manual_seed(0)
    trainer.terms["guide"].real_features = [torch.randn(400, 8), torch.randn(400, 8) + 3.0]
    trainer.terms["guide"].bandwidth = 16.0
    labels = torch.tensor([0] * 8 + [1] * 8)
    spread = torch.cat([torch.randn(8, 8), torch.randn(8, 8) + 3.0])
    collapsed = torch.cat([torch.zeros(8, 8), torch.full((8, 8), 3.0)])  # each class: its mean, 8 times
    wrong = torch.cat([torch.randn(8, 8) + 3.0, torch.randn(8, 8)])  # spread, but the other class
    score = {
        name: sum(trainer.terms["guide"].mmd(x, labels).item() for _ in range(20)) / 20
        for name, x in [("spread", spread), ("collapsed", collapsed), ("wrong", wrong)]
    }
    assert score["spread"] < score["collapsed"] < score["wrong"], score
    with pytest.raises(ValueError, match="guide-target"):
        Trainer(
            _config(demo_dir, tmp_path / "bad", 1, guide=str(guide_dir), guide_weight=1.0, guide_target="kl")
        )


def test_guide_at_another_resolution_sees_resized_fakes(tmp_path, demo_dir, guide_dir):
    names = sorted(p.name for p in demo_dir.iterdir() if p.is_dir())
    guide = _make_guide(tmp_path / "guide64", names, resolution=64)
    trainer = Trainer(
        _config(demo_dir, tmp_path / "run", 1, guide=str(guide), guide_weight=1.0), progress=False
    )
    seen = []
    original = trainer.guide.forward
    trainer.guide.forward = lambda x: seen.append(tuple(x.shape[-2:])) or original(x)
    assert trainer.train_step()["loss_guide"] > 0 and seen == [(64, 64)]  # the run makes 32 px fakes


def test_guide_refusals(tmp_path, demo_dir, guide_dir):
    with pytest.raises(FileNotFoundError, match="--guide of this run"):
        Trainer(_config(demo_dir, tmp_path / "a", 1, guide=str(tmp_path / "nope"), guide_weight=1.0))
    other = _make_guide(tmp_path / "other", ["cat", "dog"])
    with pytest.raises(ValueError, match="knows the classes"):
        Trainer(_config(demo_dir, tmp_path / "b", 1, guide=str(other), guide_weight=1.0))
    with pytest.raises(ValueError, match="needs --guide"):
        Trainer(_config(demo_dir, tmp_path / "c", 1, guide_weight=1.0))


def test_resume_with_a_guide_starts_a_recorded_phase(tmp_path, demo_dir, guide_dir):
    out = tmp_path / "run"
    train(_config(demo_dir, out, 2), progress=False)
    trainer = Trainer(
        _config(demo_dir, out, 4),
        resume=True,
        progress=False,
        command="resume with a guide",
        phase_options={"guide": str(guide_dir), "guide_weight": 0.5, "mode_seeking": 0.0},
    )
    assert trainer.guide is not None
    trainer.fit()
    run = json.loads((out / "run.json").read_text())
    assert run["config"]["guide"] == str(guide_dir) and run["config"]["guide_weight"] == 0.5
    # Only what changed is a phase change (mode_seeking was 0 already).
    assert run["phases"] == [
        {
            "from_step": 2,
            "changes": {"guide": str(guide_dir), "guide_weight": 0.5},
            "command": "resume with a guide",
        }
    ]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["loss_guide"] > 0 for r in log] == [False, False, True, True]
    names = [trace.name for trace in loss_figure(log).data]  # the Train tab's chart shows the guide
    assert "guide CE (fakes)" in names and "guide accuracy on fakes" in names
    assert "guide CE (fakes)" not in [trace.name for trace in loss_figure(log[:2]).data]

    # A plain resume keeps the phase (and records nothing new); a new weight is a new phase.
    again = Trainer(_config(demo_dir, out, 5), resume=True, progress=False)
    assert again.guide is not None and again.config.guide_weight == 0.5
    again.fit()
    Trainer(_config(demo_dir, out, 6), resume=True, progress=False, phase_options={"guide_weight": 0.0}).fit()
    run = json.loads((out / "run.json").read_text())
    assert [p["from_step"] for p in run["phases"]] == [2, 5]
    assert run["phases"][1]["changes"] == {"guide_weight": 0.0} and run["config"]["guide_weight"] == 0.0


def test_cli_guide_options(tmp_path, demo_dir, guide_dir):
    out = tmp_path / "cli"
    common = ["--out", out, "--res", "32", "--batch", "4", *TINY_MODEL_ARGS, "--no-progress"]
    proc = run_cli("train", "--data", demo_dir, "--steps", "2", "--guide-weight", "1", *common)
    assert proc.returncode != 0 and "needs --guide" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("train", "--data", demo_dir, "--steps", "2", *common)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("train", "--resume", "--steps", "3", "--guide", guide_dir, *common)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["phases"][0]["changes"] == {"guide": str(guide_dir.resolve()), "guide_weight": 0.5}
    assert "--guide" in run["phases"][0]["command"] and run["command"].count("--guide") == 0

    # The model card retraces both phases, the guide's own training in between.
    proc = run_cli("package", "--run", out, "--out", tmp_path / "pkg")
    assert proc.returncode == 0, proc.stderr
    first, guide, phase = json.loads((tmp_path / "pkg" / "package.json").read_text())["commands"]
    assert first.startswith("python -m gan_studio train --data") and "--steps 2" in first
    assert guide == (
        "python -m gan_studio train-evaluator --data demo --split RUN/split.json --arch mobilenet_v3_small "
        "--stem-stride 2 --res 32 --steps 0 --batch 64 --lr 0.002 --seed 3 --out GUIDE"
    )
    assert "--resume --steps 3 --guide GUIDE" in phase and "--out RUN" in phase
    assert str(guide_dir) not in (tmp_path / "pkg" / "README.md").read_text()

    # A confidence cap given on a later resume is a phase of its own.
    proc = run_cli("train", "--resume", "--steps", "4", "--guide-confidence", "0.9", *common)
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert (
        run["phases"][1]["changes"] == {"guide_confidence": 0.9} and run["config"]["guide_confidence"] == 0.9
    )

    # So is a rotation of what the guide sees; a D-only augmentation is refused by name.
    proc = run_cli("train", "--resume", "--steps", "5", "--guide-augment", "color,cutout", *common)
    assert proc.returncode != 0 and "choose from color, translation, rotation" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli(
        "train", "--resume", "--steps", "5", "--guide-augment", "color,translation,rotation", *common
    )
    assert proc.returncode == 0, proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["phases"][2]["changes"] == {"guide_augment": "color,translation,rotation"}


def test_guide_augment_rotation_turns_what_the_guide_sees(tmp_path, demo_dir, guide_dir):
    """--guide-augment rotation: the guide scores each fake turned by its own random angle (the same
    fakes as without it, since the rotation draws its angles after everything else)."""
    seen = {}
    for name, policy in [("plain", ""), ("rotation", "rotation")]:
        cfg = _config(
            demo_dir, tmp_path / name, 1, guide=str(guide_dir), guide_weight=1.0, guide_augment=policy
        )
        trainer = Trainer(cfg, progress=False)

        def spy(x, forward=trainer.guide.forward, key=name):
            seen[key] = x.detach().clone()
            return forward(x)

        trainer.guide.forward = spy
        trainer.train_step()
    plain, turned = seen["plain"], seen["rotation"]
    assert plain.shape == turned.shape
    per_image = (plain - turned).abs().mean(dim=(1, 2, 3))
    assert (per_image > 1e-3).float().mean() >= 0.75  # turned (an angle near 0 barely moves one)
    # Turning with mirrored borders keeps each image's colours: the means stay close.
    torch.testing.assert_close(turned.mean(dim=(1, 2, 3)), plain.mean(dim=(1, 2, 3)), atol=0.1, rtol=0)


def test_fine_tuned_package_card_retraces_its_base_model(tmp_path, demo_dir, guide_dir):
    """A run started with --init-generator PACKAGE and --guide: its model card lists the commands
    that made the base package (its run renamed BASE_RUN), the guide's training (once), then the
    fine-tuning command with GUIDE in place of the guide's folder."""
    common = ["--res", "32", "--batch", "4", *TINY_MODEL_ARGS, "--no-progress"]
    base = tmp_path / "base"
    proc = run_cli("train", "--data", demo_dir, "--out", base, "--steps", "2", *common)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("package", "--run", base, "--out", tmp_path / "pkg", "--command", "echo base-extra")
    assert proc.returncode == 0, proc.stderr
    tuned = tmp_path / "tuned"
    proc = run_cli(
        "train", "--data", demo_dir, "--out", tuned, "--steps", "3", "--init-generator", tmp_path / "pkg",
        "--d-warmup", "1", "--class-groups", "2", "--guide", guide_dir, *common,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("package", "--run", tuned, "--out", tmp_path / "pkg")  # replaces its own base
    assert proc.returncode == 0, proc.stderr
    commands = json.loads((tmp_path / "pkg" / "package.json").read_text())["commands"]
    assert len(commands) == 4, commands
    assert commands[0].startswith("python -m gan_studio train --data") and "--out BASE_RUN" in commands[0]
    assert commands[1] == "echo base-extra"
    assert commands[2].startswith("python -m gan_studio train-evaluator") and commands[2].endswith(
        "--out GUIDE"
    )
    assert "--out RUN" in commands[3] and "--guide GUIDE" in commands[3] and "--init-generator" in commands[3]
    assert str(guide_dir) not in (tmp_path / "pkg" / "README.md").read_text()
