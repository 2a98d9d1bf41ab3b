"""GAN Studio web app: ``python app.py`` locally, ``gradio app.py`` for auto-reload, or as a Hugging Face Space.

    python app.py [--data DIR] [--checkpoints DIR ...] [--workdir DIR] [--data-roots DIR ...]
                  [--host 127.0.0.1] [--port 7860] [--share] [--device cuda|mps|cpu]

The module-level ``demo`` is what Spaces and ``gradio app.py`` look for. Options can also come from
the environment (GAN_STUDIO_DATA, GAN_STUDIO_CHECKPOINTS, GAN_STUDIO_WORKDIR, GAN_STUDIO_DATA_ROOTS), which
is how a Space is configured; on a Space (SPACE_ID, or GAN_STUDIO_PROFILE=space) the limits of
gan_studio/utils/limits.py (GAN_STUDIO_MAX_*) take their safe defaults. Analytics are off unless
GRADIO_ANALYTICS_ENABLED says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from gan_studio.app import build_app, create_studio, launch_options  # noqa: E402
from gan_studio.utils import limits  # noqa: E402

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GAN Studio web app")
    parser.add_argument(
        "--data",
        default=os.environ.get("GAN_STUDIO_DATA"),
        help="default dataset folder for the Train tab (and the real images of shipped runs)",
    )
    parser.add_argument(
        "--checkpoints",
        action="append",
        default=None,
        help="folder with runs / packages / evaluators to offer (repeatable; default: checkpoints/)",
    )
    parser.add_argument(
        "--workdir",
        default=os.environ.get("GAN_STUDIO_WORKDIR", "studio"),
        help="where the app keeps its runs, curations and exports (default: ./studio)",
    )
    parser.add_argument(
        "--data-roots",
        nargs="+",
        default=None,
        help="only allow Train-tab server folders inside these (set this on a public server)",
    )
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also open a public *.gradio.live link")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    # parse_known_args: `gradio app.py` and Spaces run this module with their own arguments
    args, _ = parser.parse_known_args(argv)
    if args.checkpoints is None:
        env = os.environ.get("GAN_STUDIO_CHECKPOINTS")
        args.checkpoints = env.split(os.pathsep) if env else [str(HERE / "checkpoints")]
    if args.data_roots is None:
        env = os.environ.get("GAN_STUDIO_DATA_ROOTS")
        args.data_roots = env.split(os.pathsep) if env else None
    if args.data_roots is None and limits.space_profile():
        args.data_roots = []  # a public Space: the demo and uploaded .zips only, never the server's own folders
    return args


args = parse_args(sys.argv[1:] if __name__ == "__main__" else [])
studio = create_studio(
    workdir=args.workdir,
    checkpoint_dirs=args.checkpoints,
    default_data=args.data,
    data_roots=args.data_roots,
    device=args.device,
    warm_up_umap=False,  # started below, once the page is served: on two cores they would slow it down
)
demo = build_app(studio)

if __name__ == "__main__":
    try:
        demo.launch(
            server_name=args.host,
            server_port=args.port,
            share=args.share,
            prevent_thread_lock=True,
            **launch_options(studio),
        )
        studio.start_warm_ups(real_data=True)
        demo.block_thread()
    finally:
        studio.shutdown()
else:  # `gradio app.py`, or a host that launches `demo` itself: warm up when the first page opens

    def warm_up() -> None:
        studio.start_warm_ups(real_data=True)

    with demo:
        demo.load(warm_up, api_name=False, queue=False)
