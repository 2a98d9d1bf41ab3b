"""The ``train`` command's options, generated from TrainConfig's field declarations.

Every option is parsed with an ``argparse.SUPPRESS`` default, so that the parsed namespace holds
only what the user typed: the resolved configuration is TrainConfig's defaults, then a recipe's
values, then the options given explicitly on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
from pathlib import Path
from typing import Any

from gan_studio.training.config import TrainConfig
from gan_studio.utils.numbers import number_in


@dataclasses.dataclass(frozen=True)
class TrainOption:
    """One TrainConfig field as the command line offers it."""

    name: str  # the TrainConfig field
    flag: str  # e.g. --res, or --no-flip for a bool that defaults to True
    kind: type  # bool, int, float or str
    default: Any
    help: str
    choices: tuple[str, ...] | None
    metavar: str | None
    phase: bool  # may change on resume, starting a new phase
    resumable: bool  # may change on any resume
    path: bool  # a folder, resolved to an absolute path
    minimum: float | None = None  # a number's inclusive range
    maximum: float | None = None


def _kind(f: dataclasses.Field) -> type:
    default = f.default
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float, str)):
        return type(default)
    return str  # optional folders and patterns (default None)


def train_options() -> list[TrainOption]:
    """The declared options of TrainConfig that the command line offers, in field order."""
    options = []
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if not meta.get("cli", False):
            continue
        kind = _kind(f)
        flag = meta.get("flag")
        if flag is None:
            dashed = f.name.replace("_", "-")
            flag = f"--no-{dashed}" if kind is bool and f.default is True else f"--{dashed}"
        options.append(
            TrainOption(
                name=f.name,
                flag=flag,
                kind=kind,
                default=f.default,
                help=meta.get("help", ""),
                choices=meta.get("choices"),
                metavar=meta.get("metavar"),
                phase=bool(meta.get("phase")),
                resumable=bool(meta.get("resumable")),
                path=bool(meta.get("path")),
                minimum=meta.get("minimum"),
                maximum=meta.get("maximum"),
            )
        )
    return options


def options_by_name() -> dict[str, TrainOption]:
    return {o.name: o for o in train_options()}


def add_train_arguments(parser: argparse.ArgumentParser, *, required: tuple[str, ...] = ()) -> None:
    """Add one argument per declared option; each one's value lands on ``args.<field name>`` only
    when given (``argparse.SUPPRESS`` default). ``required``: field names the parser must demand."""
    for o in train_options():
        text = o.help
        if o.kind is bool:
            action = "store_const"
            kwargs = {"const": not o.default}
        else:
            action = "store"
            kind = number_in(o.kind, o.minimum, o.maximum) if o.kind in (int, float) else o.kind
            kwargs = {"type": kind, "choices": o.choices, "metavar": o.metavar}
            if o.default not in (None, "") and o.name not in ("data", "out"):
                text += f" (default: {o.default})"
        if o.phase:
            text += "; with --resume or in a recipe, a change starts a new phase"
        parser.add_argument(
            o.flag,
            dest=o.name,
            action=action,
            default=argparse.SUPPRESS,
            required=o.name in required,
            help=text.replace("%", "%%"),
            **kwargs,
        )


def explicit_options(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig values given on the command line, folders resolved to absolute paths; with
    ``--guide`` but no ``--guide-weight``, the guide's weight is 0.5."""
    given = {}
    for o in train_options():
        if hasattr(args, o.name):
            value = getattr(args, o.name)
            if o.path and value:
                value = str(Path(value).expanduser().resolve())
            given[o.name] = value
    return with_guide_weight(given)


def with_guide_weight(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with guide_weight 0.5 where a guide is set without a weight (the CLI's rule)."""
    if values.get("guide") and "guide_weight" not in values:
        return {**values, "guide_weight": 0.5}
    return values


def option_args(values: dict[str, Any]) -> list[str]:
    """Command-line arguments that give these TrainConfig values (the inverse of the parser)."""
    declared = options_by_name()
    argv: list[str] = []
    for name, value in values.items():
        o = declared.get(name)
        if o is None:
            raise ValueError(f"'{name}' is not an option of train.")
        if o.kind is bool:
            if value != o.default:
                argv.append(o.flag)
            continue
        if value is None:
            continue
        argv += [o.flag, str(value)]
    return argv


def command_line(values: dict[str, Any], *, resume: bool = False) -> str:
    """``python -m gan_studio train ...`` giving these values (for run.json's records)."""
    head = ["train", *(["--out", str(values["out"])] if "out" in values else [])]
    if resume:
        head.append("--resume")
    rest = option_args({k: v for k, v in values.items() if k != "out"})
    return "python -m gan_studio " + shlex.join([*head, *rest])
