"""Limits for a shared deployment (RELIABILITY.md, case 10): every limit of gan_studio/utils/limits.py is
refused with its environment variable named, images are refused by their header's size, the zip cache
keeps to its budget, and a client sees only its own accepted set unless two chose the same name.

Tiny inputs throughout; limits are set through their environment variables, as a Space sets them.
"""

from __future__ import annotations

import io
import json
import math
import os
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageFile

from gan_studio.app.curation import DEFAULT_SET, Candidate, CurationStores, set_name
from gan_studio.app.evaluation_jobs import EvaluationService
from gan_studio.app.jobs import JobRunner
from gan_studio.app.training_manager import TrainingManager, TrainOptions, stage_upload
from gan_studio.data import DatasetError, resolve_dataset_source, scan_image_folder, zip_cache
from gan_studio.data.folder import load_image
from gan_studio.training.config import TrainConfig
from gan_studio.training.run_folder import RunFolder
from gan_studio.utils import limits
from gan_studio.utils.disk_budget import disk_size
from gan_studio.utils.numbers import MAX_COUNT

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
SPACE = {limits.PROFILE_ENV: "space"}


@pytest.fixture(autouse=True)
def local_profile(monkeypatch):
    """No Space and no limit set, unless a test sets them."""
    for name in (limits.PROFILE_ENV, "SPACE_ID", *(limit.env for limit in limits.LIMITS.values())):
        monkeypatch.delenv(name, raising=False)


def _env(monkeypatch, **values):
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))


# -- the declaration --------------------------------------------------------------------------------


def test_defaults_follow_the_profile_and_each_variable_overrides_its_limit(monkeypatch):
    assert not limits.space_profile() and limits.value("steps") == MAX_COUNT
    monkeypatch.setenv("SPACE_ID", "someone/gan-studio")  # what a Hugging Face Space sets
    assert limits.space_profile()
    assert {name: limits.value(name) for name in limits.LIMITS} == {
        name: limit.space for name, limit in limits.LIMITS.items()
    }
    monkeypatch.setenv(limits.PROFILE_ENV, "local")
    assert not limits.space_profile() and limits.value("batch") == 4096
    _env(monkeypatch, GAN_STUDIO_PROFILE="space", GAN_STUDIO_MAX_STEPS=" 123 ", GAN_STUDIO_ZIP_CACHE_MB="0.5")
    assert limits.value("steps") == 123 and limits.value("zip_cache_mb") == 0.5
    for limit in limits.LIMITS.values():  # each Space default within its own range, and no looser than local
        assert limit.minimum <= limit.space <= limit.local <= limit.maximum


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("GAN_STUDIO_MAX_STEPS", "abc"),
        ("GAN_STUDIO_MAX_BATCH", "0"),
        ("GAN_STUDIO_MAX_TRAININGS", "1.5"),
        ("GAN_STUDIO_MAX_RESOLUTION", "4096"),
        ("GAN_STUDIO_MAX_UPLOAD_MB", "nan"),
        ("GAN_STUDIO_MAX_EXTRACT_MB", "-1"),
        ("GAN_STUDIO_MAX_IMAGE_PIXELS", "1e9"),
        ("GAN_STUDIO_ZIP_CACHE_MB", "inf"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_the_app_does_not_start(
    monkeypatch, tmp_path, name, text
):
    from gan_studio.app import create_studio

    monkeypatch.setenv(name, text)
    with pytest.raises(limits.LimitError, match=f"{name}='{text}' is not usable: it takes .* Unset it"):
        limits.check_all()
    with pytest.raises(limits.LimitError, match=name):
        create_studio(workdir=tmp_path / "studio", warm_up_umap=False)
    assert not (tmp_path / "studio").exists()


def test_an_unknown_profile_is_refused(monkeypatch):
    monkeypatch.setenv(limits.PROFILE_ENV, "spaces")
    with pytest.raises(limits.LimitError, match="GAN_STUDIO_PROFILE='spaces' is not a profile"):
        limits.space_profile()


# -- trainings: steps, batch, resolution, how many at once -----------------------------------------


def test_training_requests_over_a_limit_are_refused_naming_the_variable(monkeypatch, tmp_path):
    _env(monkeypatch, **SPACE)
    for options, name, said in (
        (TrainOptions(steps=20_000), "GAN_STUDIO_MAX_STEPS", "20,000 training steps is more than this Space allows: at most 10,000"),
        (TrainOptions(steps=100, batch=64), "GAN_STUDIO_MAX_BATCH", "A batch of 64 images"),
        (TrainOptions(steps=100, resolution=256), "GAN_STUDIO_MAX_RESOLUTION", "Training at 256 px"),
    ):  # fmt: skip
        with pytest.raises(limits.LimitExceeded, match=name) as refused:
            options.cli_args()
        assert said in str(refused.value)
    _env(monkeypatch, GAN_STUDIO_MAX_STEPS=20_000, GAN_STUDIO_MAX_BATCH=64, GAN_STUDIO_MAX_RESOLUTION=256)
    assert "--steps" in TrainOptions(steps=20_000, batch=64, resolution=256).cli_args()

    _env(monkeypatch, GAN_STUDIO_MAX_STEPS=500)
    service = EvaluationService(JobRunner(), tmp_path)
    with pytest.raises(limits.LimitExceeded, match="1,000 evaluator training steps .* GAN_STUDIO_MAX_STEPS"):
        service.train_evaluator(None, steps=1000)  # refused before the generator is even looked at
    with pytest.raises(limits.LimitExceeded, match="600 steps per arm .* GAN_STUDIO_MAX_STEPS"):
        service.augment_bench(None, None, arms=["real"], steps=600)


def test_a_study_from_the_app_is_held_to_a_budget(monkeypatch, tmp_path):
    """A study is seeds x arms fits to convergence: on a Space its length is bounded by its budget,
    which the app sets when none was asked for and refuses above the limit."""
    service = EvaluationService(JobRunner(), tmp_path)
    started = []
    monkeypatch.setattr(service, "_data_args", lambda generator: ([], None))
    monkeypatch.setattr(service, "study_dir", lambda generator: tmp_path / "study")
    monkeypatch.setattr(service, "_start", lambda kind, generator, argv, out: started.append(argv))
    _env(monkeypatch, **SPACE)
    with pytest.raises(
        limits.LimitExceeded, match=r"A study budget of 5 h .* at most 2 h .* GAN_STUDIO_MAX_STUDY_HOURS"
    ):
        service.study(SimpleNamespace(path="gen"), budget_hours=5)
    service.study(SimpleNamespace(path="gen"))
    assert float(started[-1][started[-1].index("--budget-hours") + 1]) == 2.0
    monkeypatch.delenv(limits.PROFILE_ENV)
    service.study(SimpleNamespace(path="gen"))  # a local app: no budget unless one is asked for or set
    assert "--budget-hours" not in started[-1]


def test_a_resume_is_held_to_the_limits_too(monkeypatch, tmp_path):
    """A run made elsewhere with a batch of 64 does not resume on a Space that allows 32."""
    run_dir = tmp_path / "runs" / "big"
    RunFolder(run_dir).write_run({"config": TrainConfig(batch=64).to_dict()})
    manager = TrainingManager(tmp_path / "runs")
    _env(monkeypatch, **SPACE)
    with pytest.raises(limits.LimitExceeded, match="A batch of 64 images .* GAN_STUDIO_MAX_BATCH"):
        manager.resume(run_dir, 100)
    with pytest.raises(limits.LimitExceeded, match="GAN_STUDIO_MAX_STEPS"):
        manager.resume(run_dir, 10**6)


def _sleeper() -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)"]


def test_background_jobs_are_counted_and_one_over_the_limit_is_refused(monkeypatch, tmp_path):
    runner = JobRunner()
    manager = TrainingManager(tmp_path / "runs", runner)
    monkeypatch.setenv("GAN_STUDIO_MAX_TRAININGS", "1")
    first = runner.start(f"train:{tmp_path / 'runs' / 'first'}", _sleeper(), tmp_path / "first.log")
    try:
        with pytest.raises(
            limits.LimitExceeded, match=r"1 running: train first\) .* GAN_STUDIO_MAX_TRAININGS"
        ):
            runner.start("evaluate:tiny", _sleeper(), tmp_path / "eval.log")
        with pytest.raises(limits.LimitExceeded, match="at most 1 background job"):
            manager.start("demo", "second", TrainOptions(steps=10))
        assert not (tmp_path / "runs" / "second").exists()  # refused before a run folder was made

        monkeypatch.setenv("GAN_STUDIO_MAX_TRAININGS", "2")
        second = runner.start("evaluate:tiny", _sleeper(), tmp_path / "eval.log")
        assert second.running
        with pytest.raises(limits.LimitExceeded, match="2 running"):
            runner.check_capacity()
        first.stop(timeout=30)
        runner.check_capacity()  # a finished job no longer counts
    finally:
        runner.stop_all()


def test_a_trainer_left_running_by_an_earlier_app_process_counts_against_the_limit(monkeypatch, tmp_path):
    """After an app restart the new process did not start the old trainer, but it still runs (it
    holds its run folder's lock), so it takes a place: the Space never runs more than allowed."""
    runs = tmp_path / "runs"
    holder_code = (
        "import sys, time; from gan_studio.training import run_lock; "
        "lock = run_lock.hold(sys.argv[1], 'gan_studio train --out old'); print('held', flush=True); time.sleep(120)"
    )
    old = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(runs / "old")], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )  # fmt: skip
    runner = JobRunner()
    manager = TrainingManager(runs, runner)
    runner.outside = manager.trainers_elsewhere
    try:
        assert old.stdout.readline().strip() == "held"
        monkeypatch.setenv("GAN_STUDIO_MAX_TRAININGS", "1")
        with pytest.raises(limits.LimitExceeded, match=rf"1 running: train old \(process {old.pid}\)"):
            manager.start("demo", "second", TrainOptions(steps=10))
        assert not (runs / "second").exists()
        monkeypatch.setenv("GAN_STUDIO_MAX_TRAININGS", "2")
        runner.check_capacity()  # one of two places taken
    finally:
        old.kill()
        old.wait()
    monkeypatch.setenv("GAN_STUDIO_MAX_TRAININGS", "1")
    runner.check_capacity()  # its process is gone: its stale lock no longer counts


def test_served_outputs_keep_their_budget_oldest_first_never_a_fresh_one(monkeypatch, tmp_path):
    """Sample zips, GIFs and curated exports pile up on a shared server: past GAN_STUDIO_MAX_OUTPUT_MB
    the oldest go, but never one made in the last ten minutes (its download may still run)."""
    from gan_studio.app.studio import OUTPUT_GRACE_S, Studio

    studio = Studio(tmp_path, *([None] * 6))
    now = time.time()
    made = []
    for i, (kind, age_s) in enumerate(
        [("scratch", 5000), ("exports", 4000), ("scratch", 3000), ("exports", 60)]
    ):
        if kind == "scratch":
            path = studio.path("scratch") / f"sample-{i}"
            path.mkdir()
            (path / "images.zip").write_bytes(b"x" * 400_000)
        else:
            path = studio.path("exports") / f"run-curated-{i}.zip"
            path.write_bytes(b"x" * 400_000)
        os.utime(path, (now - age_s, now - age_s))
        made.append(path)
    _env(monkeypatch, GAN_STUDIO_MAX_OUTPUT_MB=0.8)  # 838,861 bytes: room for two of the four
    assert studio.prune_outputs() == made[:2] and all(p.exists() for p in made[2:])
    _env(monkeypatch, GAN_STUDIO_MAX_OUTPUT_MB=0)
    assert studio.prune_outputs() == [made[2]] and made[3].exists()  # too young to go, even over budget
    assert 60 < OUTPUT_GRACE_S
    fresh = studio.scratch_dir("interp")  # a new request prunes first, then gets its own folder
    assert fresh.is_dir() and fresh.parent == studio.path("scratch")


# -- uploads, extraction, the zip cache --------------------------------------------------------------


def _zip_of(path: Path, members: dict[str, bytes], compression=zipfile.ZIP_STORED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_an_upload_over_the_limit_is_refused_and_gradio_is_told_the_same_limit(monkeypatch, tmp_path):
    from gan_studio.app import launch_options

    upload = _zip_of(tmp_path / "mine.zip", {"Nut/a.png": os.urandom(4000)})
    monkeypatch.setenv("GAN_STUDIO_MAX_UPLOAD_MB", "0.002")  # 2,097 bytes
    with pytest.raises(DatasetError, match=r"'mine.zip' \(0.0 MB\) is more than .* GAN_STUDIO_MAX_UPLOAD_MB"):
        stage_upload(upload, tmp_path / "uploads")
    assert not (tmp_path / "uploads").exists()
    studio = SimpleNamespace(allowed_paths=lambda: [])
    assert launch_options(studio)["max_file_size"] == int(0.002 * 2**20)
    monkeypatch.setenv("GAN_STUDIO_MAX_UPLOAD_MB", "1")
    assert stage_upload(upload, tmp_path / "uploads").is_file()


def test_uploads_keep_their_budget_never_one_a_run_trains_on(monkeypatch, tmp_path):
    """Uploaded .zips pile up on a shared server: past GAN_STUDIO_MAX_UPLOADS_MB the least recently
    used go when a new one is staged, but never one a run trains on (its resume reads it again), nor
    one staged in the last ten minutes, nor the new one."""
    from gan_studio.app.training_manager import UPLOAD_GRACE_S

    uploads, runs, now = tmp_path / "uploads", tmp_path / "runs", time.time()
    staged = []
    for i in range(4):
        source = _zip_of(tmp_path / f"set{i}.zip", {"Nut/a.png": os.urandom(300_000)})
        staged.append(stage_upload(source, uploads, runs))
    for path, age_s in zip(staged, (5000, 4000, 3000, 60)):
        os.utime(path, (now - age_s, now - age_s))
    (runs / "mine").mkdir(parents=True)
    RunFolder(runs / "mine").write_run({"config": {"data": str(staged[0])}})  # the oldest: a run's
    (runs / "broken").mkdir()
    (runs / "broken" / "checkpoints").mkdir()  # a folder without a run file names nothing
    _env(monkeypatch, GAN_STUDIO_MAX_UPLOADS_MB=1.3)  # 1,363,148 bytes: room for four of the five
    newest = stage_upload(_zip_of(tmp_path / "new.zip", {"Nut/a.png": os.urandom(300_000)}), uploads, runs)
    assert not staged[1].exists()  # least recently used and no run trains on it
    assert all(p.exists() for p in (staged[0], staged[2], staged[3], newest))
    _env(monkeypatch, GAN_STUDIO_MAX_UPLOADS_MB=0)
    os.utime(staged[3], (now - 60, now - 60))
    again = stage_upload(tmp_path / "set2.zip", uploads, runs)  # the same contents again: used now
    assert again == staged[2] and again.exists()
    assert staged[0].exists() and staged[3].exists() and newest.exists()  # a run's, too young, too young
    assert 60 < UPLOAD_GRACE_S
    assert sorted(uploads.iterdir()) == sorted([staged[0], staged[2], staged[3], newest])


def test_a_zip_bomb_is_refused_before_a_byte_is_extracted(monkeypatch, tmp_path):
    bomb = _zip_of(tmp_path / "bomb.zip", {"Nut/a.png": bytes(20 * 2**20)}, zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 100_000  # 20 MB of zeros in a few KB, like the 1.1 MB -> 1.1 GB
    monkeypatch.setenv("GAN_STUDIO_MAX_EXTRACT_MB", "10")
    cache = tmp_path / "cache"
    with pytest.raises(
        DatasetError, match=r"expands to 20.0 MB, which is more than .* GAN_STUDIO_MAX_EXTRACT_MB"
    ):
        resolve_dataset_source(bomb, cache_dir=cache)
    assert disk_size(cache) == 0 and not list(cache.glob("*zip-*"))


def _understate(archive: Path, real_size: int, declared: int) -> None:
    """Rewrite the zip's local and central headers to declare ``declared`` bytes instead of ``real_size``."""
    data = bytearray(archive.read_bytes())
    old, new = struct.pack("<I", real_size), struct.pack("<I", declared)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature) + offset
        assert data[at : at + 4] == old
        data[at : at + 4] = new
    archive.write_bytes(bytes(data))


def test_a_zip_that_understates_its_sizes_writes_no_more_than_it_declares(monkeypatch, tmp_path):
    liar = _zip_of(tmp_path / "liar.zip", {"Nut/a.png": bytes(2**20)}, zipfile.ZIP_DEFLATED)
    _understate(liar, 2**20, 1000)
    monkeypatch.setenv("GAN_STUDIO_MAX_EXTRACT_MB", "0.01")  # the declared 1,000 bytes pass
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="not a valid or readable zip archive"):
        resolve_dataset_source(liar, cache_dir=cache)
    assert disk_size(cache) == 0  # the half-written member went with its temporary folder


def _dataset_zip(path: Path, seed: int, kb: int = 300) -> Path:
    """A .zip that extracts to ``kb`` KB of incompressible bytes (distinct content per seed)."""
    payload = np.random.default_rng(seed).integers(0, 256, kb * 1024, dtype=np.uint8).tobytes()
    return _zip_of(path, {"Nut/a.png": payload})


def _age(folder: Path, seconds: float) -> None:
    when = os.stat(folder).st_mtime - seconds
    os.utime(folder, (when, when))


def test_the_zip_cache_keeps_its_budget_oldest_first_never_a_dataset_in_use(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    demo = cache / "vise-parts-s64-n8-seed0"  # the demo data lives here too: never pruned
    demo.mkdir(parents=True)
    (demo / "dataset.json").write_bytes(bytes(500_000))
    zips = [_dataset_zip(tmp_path / f"{name}.zip", seed) for seed, name in enumerate("abcd")]
    monkeypatch.setenv("GAN_STUDIO_ZIP_CACHE_MB", "0.7")  # room for two of the 300 KB datasets

    a = resolve_dataset_source(zips[0], cache_dir=cache)
    _age(a, 3000)
    b = resolve_dataset_source(zips[1], cache_dir=cache)
    _age(b, 2000)
    assert a.is_dir() and b.is_dir()  # 600 KB: within the budget
    c = resolve_dataset_source(zips[2], cache_dir=cache)
    assert not a.exists() and b.is_dir() and c.is_dir()  # the least recently used went

    with zip_cache.in_use(b / "Nut"):  # a scan is reading b
        _age(b, 5000)  # b is now the oldest, c the next
        _age(c, 1000)
        d = resolve_dataset_source(zips[3], cache_dir=cache)
        assert b.is_dir() and not c.exists() and d.is_dir()  # b was in use: c went instead
    _age(b, 5000)
    assert zip_cache.prune(cache, budget_mb=0.1) == [b]  # d was used moments ago: kept for now
    assert d.is_dir() and demo.is_dir()
    assert resolve_dataset_source(zips[0], cache_dir=cache) == a and (a / "Nut" / "a.png").is_file()


def test_a_scan_holds_its_extracted_zip_while_it_reads(monkeypatch, tmp_path):
    """The pruner cannot take a dataset that a scan is decoding, even when it is old and over budget."""
    images = {f"{name}/{i}.png": _png_bytes(seed=i) for name in ("Clamp", "Nut") for i in range(3)}
    archive = _zip_of(tmp_path / "set.zip", images)
    cache = tmp_path / "cache"
    root = resolve_dataset_source(archive, cache_dir=cache)
    seen = []
    once = threading.Lock()  # the scan may decode on several threads: prune on the first decode only
    real_decode = ImageFile.ImageFile.load

    def load_and_prune(image):
        with once:
            if not seen:
                _age(root, 10_000)
                seen.append(zip_cache.prune(cache, budget_mb=0))
        return real_decode(image)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load_and_prune)
    _, report = scan_image_folder(root, progress=False)
    assert seen == [[]] and report.num_images == 6 and root.is_dir()
    _age(root, 10_000)
    assert zip_cache.prune(cache, budget_mb=0) == [root]  # nobody reads it now


# -- decoded pixels ---------------------------------------------------------------------------------


def _png_bytes(size=(32, 32), seed=0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header says width x height, with a few bytes of pixel data: opening it costs nothing,
    decoding it would allocate width x height x 3 bytes before finding the data short."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's warning at open
def test_an_image_whose_header_says_too_many_pixels_is_skipped_without_decoding(monkeypatch, tmp_path):
    root = tmp_path / "data"
    for name in ("Clamp", "Nut"):
        for i in range(3):
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / f"{i}.png").write_bytes(_png_bytes(seed=i))
    (root / "Nut" / "huge.png").write_bytes(_png_header_only(12_000, 12_000))  # the 1.6 GB image
    decoded = []
    real_decode = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda image: decoded.append(image.size) or real_decode(image)
    )
    _env(monkeypatch, **SPACE)

    records, report = scan_image_folder(root, progress=False)
    reasons = dict(report.skipped)
    assert report.num_images == 6 and "Nut/huge.png" not in {r.path for r in records}
    assert reasons["Nut/huge.png"].startswith(
        "too many pixels to decode (12000x12000 = 144.0 megapixels; at most 40"
    )
    assert "GAN_STUDIO_MAX_IMAGE_PIXELS" in reasons["Nut/huge.png"]
    assert set(decoded) == {(32, 32)}  # the six small images were decoded, the huge one never
    assert "Nut/huge.png: too many pixels" in report.summary()

    monkeypatch.setenv("GAN_STUDIO_MAX_IMAGE_PIXELS", "1000")  # single files: the same rule
    with pytest.raises(DatasetError, match=r"too many pixels to decode \(32x32"):
        load_image(root / "Nut" / "0.png", 16)


# -- the app: numbers at its API, and whose accepted set a client sees ----------------------------------


def test_a_number_that_is_not_finite_never_reaches_a_handler():
    import gradio as gr

    from gan_studio.app.common import user_errors

    called = []
    handler = user_errors(lambda *values: called.append(values))
    for value in (math.nan, math.inf, -math.inf):
        with pytest.raises(gr.Error, match="Numbers must be finite"):
            handler("tiny", value)
    handler("tiny", 1.5)
    assert called == [("tiny", 1.5)]


@pytest.fixture(scope="module")
def space_app(tmp_path_factory, tiny_run, demo_dir):
    """The app as a Space builds it (GAN_STUDIO_PROFILE=space), over the tiny run and evaluator."""
    from gradio_client import Client

    from gan_studio.app import build_app, create_studio, launch_options
    from tests.app_support import free_port, tiny_evaluator

    evaluator = tiny_evaluator(tmp_path_factory.getbasetemp(), tiny_run, demo_dir)
    before = os.environ.get(limits.PROFILE_ENV)
    os.environ[limits.PROFILE_ENV] = "space"
    try:
        studio = create_studio(
            workdir=tmp_path_factory.mktemp("space-studio"), checkpoint_dirs=[tiny_run.parent, evaluator.parent],
            default_data=str(demo_dir), device="cpu", warm_up_umap=False,
        )  # fmt: skip
        demo = build_app(studio)
    finally:
        os.environ.pop(limits.PROFILE_ENV) if before is None else os.environ.update(
            {limits.PROFILE_ENV: before}
        )
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                **launch_options(studio))  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/", studio, Client
    finally:
        studio.shutdown()
        demo.close()


def test_every_numeric_input_of_the_api_has_a_range(space_app):
    import gradio as gr

    url, studio, Client = space_app
    from gan_studio.app import build_app

    demo = build_app(studio)
    checked, unbounded = [], []
    for fn in demo.fns.values():
        if not fn.api_name:
            continue
        for block in fn.inputs:
            if isinstance(block, (gr.Number, gr.Slider)):
                bounds = (block.minimum, block.maximum)
                ok = all(b is not None and math.isfinite(b) for b in bounds)
                (checked if ok else unbounded).append(f"/{fn.api_name}: {block.label} {bounds}")
    assert not unbounded, "numbers an API caller can set without a range:\n" + "\n".join(unbounded)
    assert any("/start_training: Steps" in line for line in checked)
    assert any("/curate_generate: From seed" in line for line in checked)


def _generate(client, set_text: str, n: int = 1, seed: int = 0):
    """Curate's generate for class Nut: (gallery, counts, status, ...)."""
    return client.predict(
        "tiny", "tiny-evaluator", "Nut", n, seed, 1.0, [], 3, 40, 80, 1.2, "All classes", "All",
        "Class, then seed", set_text, api_name="/curate_generate",
    )  # fmt: skip


def _shown(client, set_text: str):
    return client.predict("tiny", "All classes", "All", "Class, then seed", set_text, api_name="/curate_show")


def test_clients_share_an_accepted_set_only_when_they_name_the_same_one(space_app, monkeypatch):
    from gradio_client.exceptions import AppError

    url, studio, Client = space_app
    monkeypatch.setenv(limits.PROFILE_ENV, "space")
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)

    gallery, _, status, *_ = _generate(alice, "", n=2)  # blank: a private set, as a Space starts
    assert len(gallery) == 2 and "in your private set" in status
    gallery, _, status, *_ = _shown(bob, "")
    assert gallery == [] and "**0 accepted** of 0 candidates" in status
    _generate(bob, "", n=1, seed=50)
    assert len(_shown(alice, "")[0]) == 2 and len(_shown(bob, "")[0]) == 1
    private = [store for key, store in studio.curation._stores.items() if key[1] is None]
    assert len(private) == 2 and len({store.folder for store in private}) == 2
    alice_id = next(s for s in private if len(s.candidates) == 2).candidates[0].id
    with pytest.raises(AppError, match="No candidate"):  # bob cannot reach alice's candidate
        bob.predict("tiny", "All classes", alice_id, "All", "Class, then seed", "", api_name="/curate_toggle")

    _generate(alice, "Team-A", n=1, seed=100)  # a name: shared with whoever types it
    gallery, _, status, *_ = _shown(bob, " team-a ")
    assert len(gallery) == 1 and "in set **team-a**" in status
    before = gallery[0]["caption"][0]
    team_id = studio.curation.get("tiny", "team-a").candidates[0].id
    bob.predict(
        "tiny", "All classes", team_id, "All", "Class, then seed", "team-a", api_name="/curate_toggle"
    )
    assert _shown(alice, "team-a")[0][0]["caption"][0] != before  # alice sees bob's decision
    assert len(_shown(alice, "")[0]) == 2  # and her private set is untouched

    alice.predict(
        "tiny", "All classes", 0.0, 0.0, "All", "Class, then seed", "", api_name="/curate_thresholds"
    )
    exports = [
        alice.predict("tiny", False, 32, "metadata.jsonl", "", api_name="/curate_export")[0] for _ in (0, 1)
    ]
    assert exports[0] != exports[1]  # two exports in one second never share a file
    with zipfile.ZipFile(exports[0]) as archive:
        assert json.loads(archive.read("manifest.json"))["n_generated"] == 2  # alice's two, not bob's
    with pytest.raises(AppError, match="cannot name a set"):
        _shown(alice, "../team")
    with pytest.raises(AppError, match="GAN_STUDIO_MAX_RESOLUTION"):
        alice.predict("tiny", False, 512, "metadata.csv", "", api_name="/curate_export")


def test_the_train_tab_refuses_over_the_limits_before_reading_any_data(space_app, monkeypatch):
    from gradio_client.exceptions import AppError

    url, _, Client = space_app
    monkeypatch.setenv(limits.PROFILE_ENV, "space")
    client = Client(url, verbose=False)
    inputs = ["Upload a .zip", "", None, "big", "32", 20_000, 4, "8", "16", 2e-4, 0.3, 2, 2, "translation"]
    with pytest.raises(AppError, match="at most 10,000 training steps .* GAN_STUDIO_MAX_STEPS"):
        client.predict(*inputs, api_name="/start_training")
    with pytest.raises(AppError, match="greater than maximum"):  # past any limit: Gradio's own range
        client.predict(*inputs[:5], 2 * 10**9, *inputs[6:], api_name="/start_training")


def test_gradio_never_rewrites_an_image_it_may_be_serving(space_app, tmp_path):
    """Two requests returning the same image at once (seen in benchmarks/space_soak.py) must not
    truncate each other's download: a copy already in the cache is left as it is, a new one appears
    whole (written aside and renamed)."""
    from gradio import processing_utils

    from gan_studio.app import gradio_cache

    assert processing_utils.save_pil_to_cache is gradio_cache.save_pil_to_cache  # the app installed it
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    first = Path(processing_utils.save_img_array_to_cache(image, str(tmp_path)))
    assert Image.open(first).size == (8, 8) and [p.name for p in first.parent.iterdir()] == [first.name]
    first.write_bytes(b"being downloaded")  # stands for the copy a download is reading right now
    again = processing_utils.save_img_array_to_cache(image, str(tmp_path))
    assert Path(again) == first and first.read_bytes() == b"being downloaded"  # not rewritten under it
    path = Path(processing_utils.save_bytes_to_cache(b"abc", "notes.txt", str(tmp_path)))
    path.write_bytes(b"being downloaded")
    assert processing_utils.save_bytes_to_cache(b"abc", "notes.txt", str(tmp_path)) == str(path)
    assert path.read_bytes() == b"being downloaded"


def test_sets_are_kept_apart_on_disk_and_a_closed_page_takes_its_own_an_hour_later(tmp_path):
    stores = CurationStores(tmp_path / "curation")
    assert stores.folder("tiny") == tmp_path / "curation" / "tiny"  # where earlier versions kept it
    assert stores.get("tiny") is stores.get("tiny", DEFAULT_SET)
    assert stores.folder("tiny", "team") == tmp_path / "curation" / ".sets" / "team" / "tiny"
    assert set_name(" Team ") == "team" and set_name("") is None
    with pytest.raises(ValueError, match="Name the set"):
        stores.get("tiny", None, None)
    mine, yours = stores.get("tiny", None, "page-1"), stores.get("tiny", None, "page-2")
    for store in (mine, yours):
        store.candidates.append(
            Candidate("Nut/seed_000000_t100", "Nut", 0, 0, 1.0, 1, "x.png", 0.9, "Nut", 0.9, 1.0, None)
        )
        store.save()
    assert mine is not yours and mine.folder != yours.folder
    stores.closed("page-1")  # page-1 closed; page-2 closed too, then came back
    stores.closed("page-2")
    stores.get("tiny", None, "page-2")
    stores._prune_private(now=time.time() + 2 * 3600)  # two hours later
    assert not mine.folder.exists() and yours.folder.is_dir()
    assert stores.get("tiny", None, "page-1").candidates == []
    stores._prune_private(now=time.time() + 2 * 24 * 3600)  # two days later, untouched: gone too
    assert not yours.folder.exists()
