"""Share runs through the Hugging Face Hub: upload a package, download one, use it like a local run.

What travels is a *package* (``gan_studio.packaging``: EMA generator, evaluator, split, metrics and a
model card), never a training checkpoint. ``push_run`` packages a run on the fly (or uploads an
existing package) with ``huggingface_hub``; ``pull_run`` accepts a local package folder or downloads
one. A pulled package placed under ``checkpoints/`` shows up in the app; in code the generator loads
with ``gan_studio.sampling.load_generator(folder / "generator")`` (``Generator.from_pretrained``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from gan_studio.packaging import is_package, package_run


class HubError(ValueError):
    """An upload or download failed; the message says why and what to do.

    A ValueError, so the CLI prints it as one line instead of a traceback."""


def _default_parts(run_dir: Path) -> tuple[Path | None, Path | None]:
    """The evaluator and report the app keeps inside a run (RUN/evaluator, RUN/evaluation), if present."""
    evaluator = run_dir / "evaluator"
    report = run_dir / "evaluation"
    return (
        evaluator if (evaluator / "model.safetensors").is_file() else None,
        report if (report / "metrics.json").is_file() else None,
    )


def push_run(
    source: str | os.PathLike,
    repo_id: str,
    *,
    evaluator: str | os.PathLike | None = None,
    report: str | os.PathLike | None = None,
    private: bool = False,
    token: str | None = None,
    commit_message: str | None = None,
    api=None,
) -> str:
    """Upload a package, or a run packaged on the fly, to the Hub model repo ``repo_id``.

    ``api`` defaults to ``huggingface_hub.HfApi(token=token)``. Returns the URL of the commit.
    """
    source = Path(source).expanduser()
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="gan-studio-push-") as tmp:
        if is_package(source):
            folder = source
        else:
            default_evaluator, default_report = _default_parts(source)
            folder = package_run(
                source,
                Path(tmp) / repo_id.split("/")[-1],
                evaluator_dir=evaluator or default_evaluator,
                report_dir=report or default_report,
                name=repo_id,
            )
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            commit = api.upload_folder(
                folder_path=str(folder),
                repo_id=repo_id,
                repo_type="model",
                commit_message=commit_message or f"Upload GAN Studio package of {source.name}",
            )
        except Exception as error:  # noqa: BLE001 - network, auth and permission errors get the same advice
            raise HubError(
                f"Uploading to '{repo_id}' failed ({type(error).__name__}: {error}). Log in with "
                "`huggingface-cli login` (or pass a token), check the repo name, and that you are online."
            ) from error
    return str(getattr(commit, "commit_url", commit))


def pull_run(
    repo_id_or_dir: str | os.PathLike,
    *,
    revision: str | None = None,
    local_dir: str | os.PathLike | None = None,
    token: str | None = None,
) -> Path:
    """A local package folder: ``repo_id_or_dir`` itself when it is a folder, else a Hub download."""
    path = Path(repo_id_or_dir).expanduser()
    if path.is_dir():
        folder = path
    else:
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(
                    repo_id=str(repo_id_or_dir),
                    revision=revision,
                    local_dir=str(local_dir) if local_dir else None,
                    token=token,
                )
            )
        except Exception as error:  # noqa: BLE001 - offline, missing repo, auth: one clear message
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
            hint = (
                "HF_HUB_OFFLINE is set, so only repos already in the local cache can be used"
                if offline
                else "check the repo name and your connection (private repos need a token)"
            )
            raise HubError(
                f"Cannot get '{repo_id_or_dir}': it is not a local folder, and downloading it failed "
                f"({type(error).__name__}); {hint}."
            ) from error
    if not is_package(folder):
        raise HubError(
            f"'{folder}' is not a GAN Studio package (no package.json of kind gan-studio-package). "
            "Make one with `python -m gan_studio package --run RUN --out DIR`."
        )
    return folder


# ----------------------------------------------------------------------------- CLI


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="upload a run (packaged on the fly) or a package to the Hugging Face Hub")
    p.add_argument("source", type=Path, help="run folder or package folder")
    p.add_argument("repo_id", help="Hub model repo, e.g. you/vise-parts-gan")
    p.add_argument("--evaluator", type=Path, default=None, help="evaluator folder (default: RUN/evaluator)")
    p.add_argument(
        "--report", type=Path, default=None, help="evaluate --out folder (default: RUN/evaluation)"
    )
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=run_push)

    p = sub.add_parser("pull", help="download a package from the Hub and print its folder")
    p.add_argument("repo_id")
    p.add_argument("--revision", default=None)
    p.add_argument("--local-dir", type=Path, default=None, help="e.g. checkpoints/NAME, to see it in the app")
    p.set_defaults(func=run_pull)


def run_push(args) -> int:
    print(
        push_run(
            args.source, args.repo_id, evaluator=args.evaluator, report=args.report, private=args.private
        )
    )
    return 0


def run_pull(args) -> int:
    print(pull_run(args.repo_id, revision=args.revision, local_dir=args.local_dir))
    return 0
