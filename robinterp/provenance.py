"""Where a result came from: commit, library versions, hardware, time."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

from robinterp import __version__
from robinterp.codehash import installed_version
from robinterp.paths import project_root

LIBRARIES = ("torch", "torchvision", "captum", "quantus", "numpy", "scipy", "pandas", "papermill")


COMMIT_ENV = "ROBINTERP_COMMIT"
"""The commit of a copy without git's folder (a cluster worker's or a GPU machine's copy of the
tree), set by whoever made the copy; git's own answer wins where there is one."""


@functools.cache
def git_commit() -> str:
    """The checkout's commit, with ``-dirty`` when tracked files differ from it."""
    try:

        def git(*args: str) -> str:
            return subprocess.run(
                ["git", *args], cwd=project_root(), capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()

        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get(COMMIT_ENV) or "unknown"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "robinterp": __version__}
    return versions | {name: installed_version(name, "not installed") for name in LIBRARIES}


BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo's flags of the instructions that do bfloat16 arithmetic natively: without them
torch emulates it, and bfloat16 autocast trains several times slower than float32."""


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The processor's name where Linux gives it, and whether it does bfloat16 natively (a
    timing, bfloat16's above all, depends on both); else its architecture."""
    try:
        lines = cpuinfo.read_text().splitlines()
    except OSError:
        return platform.machine()
    field = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines) if value}
    native = [flag for flag in BF16_FLAGS if flag in field.get("flags", "").split()]
    bf16 = f"bfloat16: {', '.join(native)}" if native else "no native bfloat16"
    return f"{field.get('model name', platform.machine())}; {bf16}"


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads != 1 else ''} of {os.cpu_count()} cores ({cpu_model()})"


def provenance() -> dict[str, object]:
    return {
        "commit": git_commit(),
        "versions": library_versions(),
        "hardware": hardware(),
        "utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
