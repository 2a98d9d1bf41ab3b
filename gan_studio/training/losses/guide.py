"""A frozen guide classifier (``--guide``, trained beforehand on the run's train split with
train-evaluator): G also makes fakes it recognises, class knowledge D's own head needs ~10^5 images
to learn. Its gradients reach G only."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_studio.device import autocast
from gan_studio.models.diffaug import GUIDE_POLICIES, diff_augment, parse_policy
from gan_studio.models.layers import fp32
from gan_studio.training.losses.base import StepContext, Term, TermResult, TermSetup
from gan_studio.training.losses.mmd import class_rows, squared_mmd


def load_guide(config, class_names: list[str], run_dir: Path, device: torch.device):
    """The frozen guide classifier (eval mode, no parameter gradients; gradients reach G only)."""
    from gan_studio.models.classifier import load_evaluator

    try:
        with torch.random.fork_rng(devices=[]):  # building it draws random weights: keep the run's RNG
            guide = load_evaluator(config.guide, device=device)
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"{exc} (--guide of this run; make it with train-evaluator --split "
            f"{run_dir / 'split.json'} so that it never sees test images)"
        ) from None
    if guide.class_names != class_names:
        raise ValueError(
            f"The guide '{config.guide}' knows the classes {guide.class_names}, this run trains "
            f"{class_names}. Train the guide on the same dataset (train-evaluator --split "
            f"{run_dir / 'split.json'})."
        )
    return guide.eval().requires_grad_(False)


class GuideLoss(Term):
    """``--guide-target ce``: each fake's cross-entropy, capped by ``--guide-confidence``; ``mmd``:
    per-class MMD between the fakes' and the real images' guide features."""

    name = "guide"
    stats = ("loss_guide", "acc_guide_fake")

    def __init__(self, config, setup: TermSetup):
        super().__init__(config.guide_weight)
        self.guide = setup.guide
        self.setup = setup
        self.target = config.guide_target
        self.confidence = config.guide_confidence
        self.policy = parse_policy(config.guide_augment, GUIDE_POLICIES)
        self.real_features: list[torch.Tensor] | None = None  # mmd: the real images' features per class
        self.bandwidth = 1.0

    @classmethod
    def check(cls, config) -> None:
        parse_policy(config.guide_augment, GUIDE_POLICIES)  # a D-only augmentation is refused by name
        if config.guide_weight > 0 and not config.guide:
            raise ValueError("--guide-weight needs --guide GUIDE_DIR (a classifier from train-evaluator).")
        if not 0.0 < config.guide_confidence <= 1.0:
            raise ValueError(f"--guide-confidence must be in (0, 1], got {config.guide_confidence}.")
        if config.guide_target not in ("ce", "mmd"):
            raise ValueError(f"--guide-target must be 'ce' or 'mmd', got {config.guide_target!r}.")
        if config.guide_confidence < 1.0 and not config.guide:
            raise ValueError(
                "--guide-confidence needs --guide GUIDE_DIR (a classifier from train-evaluator)."
            )

    @classmethod
    def build(cls, config, setup: TermSetup) -> GuideLoss | None:
        return cls(config, setup) if setup.guide is not None else None

    def generator_loss(self, ctx: StepContext) -> TermResult:
        # Its own augmentation (--guide-augment; never cutout, which it did not see in training):
        # G must make the class visible wherever the part lands, not a pixel pattern.
        device, precision, labels = self.setup.device, self.setup.precision, ctx.fake_labels
        guide_in = self.guide.fit_resolution(fp32(diff_augment(ctx.fake, self.policy)))
        if self.target == "mmd":
            with autocast(device, precision):
                features = self.guide.features(guide_in)
                logits = fp32(self.guide.head(features))
            loss = self.mmd(fp32(features), ctx.fake_classes)
        else:
            with autocast(device, precision):
                logits = fp32(self.guide(guide_in))
            loss = F.cross_entropy(logits, labels, reduction="none")
            if self.confidence < 1.0:
                # -log p + log c > 0 exactly while p < c: recognised fakes get no further push.
                loss = F.relu(loss + math.log(self.confidence))
            loss = loss.mean()
        accuracy = (logits.argmax(1) == labels).float().mean()
        return loss, {"loss_guide": loss, "acc_guide_fake": accuracy}

    def mmd(self, features: torch.Tensor, labels: list[int] | torch.Tensor, n_real: int = 32) -> torch.Tensor:
        """Per-class squared MMD between the fakes' guide features and the class's real ones.

        Cross-entropy rewards each fake for being the most typical member of its class, so a class
        collapses onto one pose. MMD compares distributions: fakes are drawn towards all of their
        class's real images and pushed apart from each other (the unbiased fake-fake term), so
        covering one pose leaves a gap. Real features are computed once (eval mode) and sampled.
        """
        if self.real_features is None:
            self._compute_real_features()
        gamma = 1.0 / (2.0 * self.bandwidth)
        terms = []
        for c, fake in class_rows(features, labels):
            bank = self.real_features[c]
            real = bank[torch.randint(len(bank), (min(n_real, len(bank)),), device=bank.device)]
            terms.append(squared_mmd(fake, real, gamma))
        return torch.stack(terms).mean()

    def _compute_real_features(self) -> None:
        s = self.setup
        _, bank = self.guide.predict_uint8(s.images)
        bank = torch.from_numpy(bank).to(s.device)
        labels_all = s.labels.to(bank.device)
        self.real_features = [bank[labels_all == c] for c in range(s.n_classes)]
        sample = bank[torch.randperm(len(bank), generator=torch.Generator().manual_seed(0))[:512]]
        self.bandwidth = torch.cdist(sample, sample).median().item() ** 2  # median heuristic
