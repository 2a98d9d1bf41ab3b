"""Every tab through its HTTP API (gradio_client), against the app launched once on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from gan_studio.app.evaluation_jobs import EvaluationService
from gan_studio.app.export import SavedExport
from tests.app_support import running_app, tiny_evaluator
from tests.conftest import run_cli

FOLDER = "Folder on the server"
# Gradio's queue calls pandas APIs that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")


def eval_tab_inputs(run, evaluator, *, steps=2, metrics=("cas",), arms=("real", "real+syn")):
    """The Evaluate tab's inputs: run, evaluator, arch, evaluator steps, n/class, seed, metrics, bench options."""
    return run, evaluator, "mobilenet_v3_small", steps, 4, 0, list(metrics), list(arms), "0.5", 1, 2


@pytest.fixture(scope="module")
def app(tmp_path_factory, tiny_run, demo_dir):
    """The app over the tiny run (read-only) and a copy of it in the workspace (evaluations write there)."""
    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    workdir = tmp_path_factory.mktemp("studio")
    shutil.copytree(tiny_run, workdir / "runs" / "mine")
    with running_app(workdir, tiny_run, demo_dir, evaluator) as (url, studio):
        yield Client(url, verbose=False), studio


@pytest.fixture(scope="module")
def client(app):
    return app[0]


def poll(fn, done, timeout: float = 300, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if done(value):
            return value
        time.sleep(every)
    raise AssertionError(f"timed out; last value: {value!r}"[:2000])


def test_model_picker_lists_runs_and_evaluators(client):
    runs, evaluators, info, banner = client.predict(None, None, api_name="/list_models")
    assert {value for _, value in runs["choices"]} == {"tiny", "mine"}
    assert "tiny-evaluator" in {value for _, value in evaluators["choices"]}
    assert runs["value"] == "tiny" and "32 px" in info and banner["visible"] is False
    evaluator_update, info = client.predict("mine", None, api_name="/select_run")
    assert "**mine**" in info and evaluator_update["value"] == "tiny-evaluator"


def test_sample_shows_verdicts_and_downloads_a_zip(client):
    gallery, before_after, archive, note, *_ = client.predict(
        "tiny", "tiny-evaluator", "Nut", 3, 7, 0.8, ["median", "contrast"], 3, 40, 80, 1.2, api_name="/sample"
    )
    assert [item["caption"].split(" · ")[0] for item in gallery] == ["Nut s7", "Nut s8", "Nut s9"]
    assert (
        all(item["caption"].split(" · ")[1][0] in "✓→" for item in gallery) and "evaluator recognises" in note
    )
    assert len(before_after) == 2
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert sorted(n for n in zf.namelist() if n.endswith(".png")) == [
            f"Nut/seed_{s:06d}.png" for s in (7, 8, 9)
        ]
    first = manifest["images"][0]  # gan_studio.sampling's samples manifest, as the sample command writes
    assert [f["name"] for f in first["filters"]] == ["median", "contrast"] and first["truncation"] == 0.8
    assert first["scores"]["predicted"] and manifest["model"]["id"] == "tiny"

    gallery, before_after, *_ = client.predict(
        "tiny", None, "All classes", 1, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/sample"
    )
    assert len(gallery) == 10 and gallery[0]["caption"] == "Assembly s0"
    assert before_after is None  # no filter: no before / after of one and the same image


def test_sample_errors_say_what_to_do(client):
    with pytest.raises(AppError, match="not a class of 'tiny'"):
        client.predict("tiny", None, "Hammer", 1, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/sample")
    with pytest.raises(AppError, match="Pick a run first"):
        client.predict(None, None, "All classes", 1, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/sample")


def test_interpolate_makes_a_filmstrip_and_a_gif(client):
    strip, gif, downloads = client.predict(
        "tiny", "Nut", 0, "Clamp", 3, 6, "slerp", 8, 1.0, api_name="/interpolate"
    )
    assert Path(strip).is_file() and gif.endswith(".gif")
    with Image.open(gif) as image:
        assert image.is_animated and image.n_frames == 10  # 6 frames, forth and back
    assert any(str(d).endswith(".gif") for d in downloads)


def test_gradcam_puts_real_and_synthetic_side_by_side(client):
    real, synthetic, note = client.predict(
        "tiny", "tiny-evaluator", "Nut", ["Real (held-out test)", "Synthetic"], 2, "GradCAM", "Predicted class", 0, 1.0,
        api_name="/gradcam",
    )  # fmt: skip
    assert 1 <= len(real) <= 2 and len(synthetic) == 2
    assert real[0]["caption"].startswith("true Nut · pred ") and synthetic[0]["caption"].startswith(
        "asked Nut"
    )
    assert "GradCAM" in note and "features." in note
    _, synthetic, _ = client.predict(
        "tiny", "tiny-evaluator", "Nut", ["Synthetic"], 1, "EigenCAM", "Clamp", 0, 1.0, api_name="/gradcam"
    )
    assert synthetic[0]["caption"].endswith("map: Clamp")


def test_embeddings_plot_real_and_generated(client):
    plot, readout = client.predict("tiny", "tiny-evaluator", 4, 0, 1.0, True, api_name="/embeddings")
    figure = json.loads(plot["plot"])
    names = {trace["name"] for trace in figure["data"]}
    assert "Nut · generated" in names and "Nut · real train" in names and "Nut · real test" in names
    assert "Precision" in readout and "Coverage" in readout


def test_curate_generate_threshold_toggle_export(client, app):
    studio = app[1]
    gallery, counts, status, *_ = client.predict(
        "tiny", "tiny-evaluator", "All classes", 2, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/curate_generate"
    )
    assert len(gallery) == 20 and "Added 20 candidates" in status
    assert [row[1] for row in counts["data"]] == [2] * 10
    gallery, counts, status, *_ = client.predict(
        "tiny", "All classes", 0.0, 0.0, api_name="/curate_thresholds"
    )
    assert all(item["caption"].startswith("✓") for item in gallery) and "20 accepted" in status
    first_id = studio.curation.get("tiny").candidates[0].id
    gallery, counts, status, *_ = client.predict("tiny", "All classes", first_id, api_name="/curate_toggle")
    assert "19 accepted" in status and gallery[0]["caption"].startswith("✗* ")  # * decided by hand
    archive, report = client.predict("tiny", False, 32, "metadata.jsonl", api_name="/curate_export")
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert len(zf.read("metadata.jsonl").decode().splitlines()) == 19
    assert manifest["n_generated"] == 19 and manifest["n_real"] == 0 and "19 images at 32 px" in report
    gallery, *_ = client.predict("tiny", "Nut", api_name="/curate_show")
    assert len(gallery) == 2
    assert (studio.workdir / "curation" / "tiny" / "state.json").is_file()  # survives a restart


def test_train_tab_checks_the_dataset_and_trains_in_the_background(client, app, demo_dir):
    report, counts = client.predict(FOLDER, str(demo_dir), None, api_name="/validate_dataset")
    assert "10 classes · 80 usable images" in report and ["Nut", 8] in counts["value"]["data"]
    with pytest.raises(AppError, match="does not exist"):
        client.predict(FOLDER, str(demo_dir / "nope"), None, api_name="/validate_dataset")

    watch = client.predict(
        FOLDER, str(demo_dir), None, "api run", "32", 4, 4, "8", "16", 2e-4, 0.3, 2, 2, "translation",
        api_name="/start_training",
    )  # fmt: skip
    assert watch["value"] == "api-run"

    # Meanwhile: the Evaluate tab trains an evaluator for the workspace copy of the tiny run.
    assert "running" in client.predict(*eval_tab_inputs("mine", None), api_name="/train_evaluator")

    def progress():
        return client.predict("api-run", api_name="/training_progress")

    final = poll(progress, lambda v: "finished" in v[0] or "failed" in v[0])
    status, bar, losses, samples, recon, checkpoints, log, *_ = final
    assert "**finished** · step 4 / 4" in status, log
    assert (
        'data-state="finished"' in bar
        and losses is not None
        and Path(samples).is_file()
        and Path(recon).is_file()
    )
    assert checkpoints["data"][0][0] == 4
    _, note = client.predict("api-run", 3, api_name="/sample_grid")  # between the grids of steps 2 and 4
    assert "**step 2** (grid 1 of 2" in note
    plot, note = client.predict("api-run", "mine", api_name="/compare_runs")
    assert plot is not None and "No CAS yet" in note
    runs, *_ = client.predict(None, None, api_name="/list_models")
    assert "api-run" in {value for _, value in runs["choices"]}
    with pytest.raises(AppError, match="not being trained"):
        client.predict("tiny", api_name="/stop_training")  # a run this app did not start

    job = poll(
        lambda: client.predict("mine", "train-evaluator", api_name="/job_status"),
        lambda v: v["state"] != "running",
    )
    assert job["state"] == "finished", job["log"]


def job_done(client, run, kind):
    return poll(lambda: client.predict(run, kind, api_name="/job_status"), lambda v: v["state"] != "running")


def test_evaluate_tab_runs_metrics_and_the_augmentation_experiment(client, app):
    studio = app[1]
    if not (studio.runs_dir / "mine" / "evaluator" / "model.safetensors").is_file():
        client.predict(*eval_tab_inputs("mine", None), api_name="/train_evaluator")
        job_done(client, "mine", "train-evaluator")
    client.predict(None, None, api_name="/list_models")
    inputs = eval_tab_inputs("mine", "mine/evaluator", metrics=["cas", "prdc"])
    client.predict(*inputs, api_name="/evaluate")
    client.predict(*inputs, api_name="/augment_bench")  # runs alongside the evaluation
    job = job_done(client, "mine", "evaluate")
    assert job["state"] == "finished", job["log"]
    bench_job = job_done(client, "mine", "augment-bench")
    assert bench_job["state"] == "finished", bench_job["log"]

    overview, per_class, samples, pairs, likeness, bench, bench_plot, report, where, study, study_plot = (
        client.predict("mine", api_name="/evaluation_results")
    )
    assert likeness is None  # no c2st in this evaluation
    assert "No study yet" in study and study_plot is None
    metrics = " ".join(row[0] for row in overview["data"]).lower()
    assert "cas" in metrics and "precision" in metrics and "coverage" in metrics
    assert per_class["value"]["headers"][:2] == ["class", "CAS"] and len(per_class["value"]["data"]) == 10
    assert Path(report).name == "report.md" and "report.md" in where and Path(samples).is_file()
    assert "real+syn" in bench and bench_plot is not None
    _, info = client.predict("mine", "mine/evaluator", api_name="/select_run")
    assert "CAS" in info  # the registry now lists the run's metrics
    # An evaluation with c2st has its grid of the samples that came closest to passing: the tab shows it.
    newest = EvaluationService(app[1].jobs, app[1].workdir).history(app[1].registry.get("generator", "mine"))[
        -1
    ]
    Image.new("RGB", (8, 8)).save(newest.folder / "c2st_photo_likeness.png")
    likeness = client.predict("mine", api_name="/evaluation_results")[4]
    assert likeness and Image.open(likeness).size == (8, 8)
    with pytest.raises(AppError, match="has no evaluator yet"):
        client.predict(*eval_tab_inputs("mine", None, arms=["real+syn_filtered"]), api_name="/augment_bench")


def test_evaluate_tab_measures_a_curate_export(client, app):
    """The set a user would add, measured as it was exported (evaluate --images): picked in Evaluate's
    "Generated images" list, which names the model's Curate exports. On the workspace's copy of the tiny
    run: an evaluation of a run is kept in its folder, and the tiny run is shared read-only."""
    client.predict(
        "mine", "tiny-evaluator", "All classes", 2, 0, 1.0, [], 3, 40, 80, 1.2, api_name="/curate_generate"
    )
    client.predict("mine", "All classes", 0.0, 0.0, api_name="/curate_thresholds")
    archive, _ = client.predict("mine", False, 32, "metadata.csv", api_name="/curate_export")
    name = Path(archive).name
    with zipfile.ZipFile(archive) as zf:
        n_generated = json.loads(zf.read("manifest.json"))["n_generated"]
    sources = client.predict("mine", "none", api_name="/evaluation_sources")["choices"]
    exports = [(label, value) for label, value in sources if value.startswith("export:")]
    assert exports[0] == (
        f"export {SavedExport(Path(name), {}).made[5:]} · {n_generated} images",
        f"export:{name}",
    )
    inputs = eval_tab_inputs("mine", "tiny-evaluator", metrics=["cas", "memorization"])
    client.predict(*inputs, 0, 3, 0, f"export:{name}", api_name="/evaluate")
    job = job_done(client, "mine", "evaluate")
    assert job["state"] == "finished", job["log"]
    overview, *_, where, _, _ = client.predict("mine", api_name="/evaluation_results")
    assert f"(given: {name})" in where
    assert any("near-copies" in row[3] for row in overview["data"])  # memorisation of the exported set
    history, _ = client.predict("mine", api_name="/evaluation_history")
    newest = history["value"]["data"][0]
    assert " given + " in newest[3]
    kept = EvaluationService(app[1].jobs, app[1].workdir).history(app[1].registry.get("generator", "mine"))
    assert sum(kept[-1].meta["generated_per_class"].values()) == n_generated
    with pytest.raises(AppError):  # only the exports listed: never a path a client makes up
        client.predict(*inputs, 0, 3, 0, "export:../curation/mine/state.json", api_name="/evaluate")


def test_app_py_builds_a_module_level_demo_for_spaces(tmp_path, tiny_run):
    """`gradio app.py` and Spaces import app.py and look for `demo`; a Space never exposes server folders."""
    code = (
        "import app, gradio; assert isinstance(app.demo, gradio.Blocks); "
        "print(app.studio.workdir, app.studio.data_roots, [str(d) for d in app.studio.checkpoint_dirs])"
    )
    env = {
        "GAN_STUDIO_WORKDIR": str(tmp_path / "w"),
        "GAN_STUDIO_CHECKPOINTS": str(tiny_run.parent),
        "SPACE_ID": "x/y",
    }
    proc = run_cli("-c", code, module=(), env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    workdir, roots, dirs = proc.stdout.strip().splitlines()[-1].split(" ", 2)
    assert workdir == str((tmp_path / "w").resolve()) and roots == "[]" and str(tiny_run.parent) in dirs
