"""The heavy CLI commands re-execute themselves once with glibc allocator tunables (issue 2 speed)."""

from __future__ import annotations

import json
import platform
import sys

import pytest

from gan_studio.utils.allocator import GLIBC_TUNABLES, tuned_environment, wants_tuning

GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc tunables exist on glibc Linux only")
def test_which_commands_are_tuned():
    assert wants_tuning(["train", "--data", "demo"], {})
    assert wants_tuning(["train-evaluator"], {}) and wants_tuning(["augment-bench"], {})
    assert not wants_tuning(["sample", "--n", "4"], {})  # light commands start without the detour
    assert not wants_tuning(["--help"], {})
    assert not wants_tuning(["train"], {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"})  # yours wins
    assert not wants_tuning(["train"], {"GAN_STUDIO_TUNE_MALLOC": "0"})


def test_tuned_environment_keeps_a_users_tunables():
    assert tuned_environment({"A": "1"}) == {"A": "1", "GLIBC_TUNABLES": GLIBC_TUNABLES}
    mine = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert tuned_environment(mine) == mine


@pytest.mark.skipif(not GLIBC_LINUX, reason="glibc tunables exist on glibc Linux only")
def test_train_cli_runs_with_the_tunables(tiny_run, monkeypatch):
    """The tiny run was trained through `python -m gan_studio train`: its process had them set."""
    import os

    if "GLIBC_TUNABLES" in os.environ:
        pytest.skip("the test environment sets GLIBC_TUNABLES itself")
    hardware = json.loads((tiny_run / "run.json").read_text())["hardware"]
    assert hardware["malloc_tunables"] == GLIBC_TUNABLES
