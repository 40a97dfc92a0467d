"""Where a result came from: commit, library versions, hardware, time."""

from __future__ import annotations

import datetime
import functools
import importlib.metadata
import os
import platform
import subprocess

import torch

from robinterp import __version__
from robinterp.paths import project_root

LIBRARIES = ("torch", "torchvision", "captum", "quantus", "numpy", "pandas", "papermill")


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
        return "unknown"


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "robinterp": __version__}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    threads = torch.get_num_threads()
    return f"CPU, {threads} thread{'s' if threads != 1 else ''} of {os.cpu_count()} cores ({platform.machine()})"


def provenance() -> dict[str, object]:
    return {
        "commit": git_commit(),
        "versions": library_versions(),
        "hardware": hardware(),
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
