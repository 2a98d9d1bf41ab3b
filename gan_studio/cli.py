"""Command-line entry point: ``python -m gan_studio <command> ...``.

Each command lives next to the code it drives and registers itself here; this module only
dispatches and turns user errors (bad data, missing runs) into one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "gan_studio.commands",
    "gan_studio.evaluation.commands",
    "gan_studio.hub",
    "gan_studio.evaluation.bench_commands",
    "gan_studio.study.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m gan_studio",
        description="GAN Studio: grow small labeled image datasets with a class-conditional few-shot GAN.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if not name.startswith(str(e.name)):
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from gan_studio.data.common import DatasetError
    from gan_studio.training.checkpoint import CheckpointError

    try:
        return int(args.func(args) or 0)
    except (DatasetError, CheckpointError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
