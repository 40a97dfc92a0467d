"""Whether a chapter's executed page is current, as ``make`` asks of a target.

A stamp hashes everything an executed chapter depends on: its notebook, its parameters (the
resolved config and the label), every source file of the package (pages, plots and verdicts
included, which the model and table cache ignores), the training-method modules the
environment adds, the locked environment (requirements.lock: every package's version, a
renderer's included), Python's version and how many GPUs torch sees; and,
for a chapter that reads the others' results (the synthesis), the stamps of the chapters it
reads. ``robinterp book`` keeps a chapter whose recorded stamp equals the one it would run
under, so a second build with nothing changed runs no notebook; any edit runs the chapters it
can change, and the cache still spares them what it holds. The data are fixed by their
checksums and need no stamp.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robinterp import codehash
from robinterp.methods import ENVIRONMENT
from robinterp.paths import project_root

SUFFIX = ".stamp"


@functools.cache
def _environment_digest() -> str:
    """The package's source (every file), the extra method modules, the lock, Python."""
    digest = hashlib.sha256()
    for path in sorted(codehash.PACKAGE.rglob("*.py")):
        digest.update(path.relative_to(codehash.PACKAGE).as_posix().encode())
        digest.update(path.read_bytes())
    for dotted in sorted(name.strip() for name in os.environ.get(ENVIRONMENT, "").split(",") if name.strip()):
        digest.update(dotted.encode())
        outside = codehash._outside_path(dotted)
        digest.update(outside.read_bytes() if outside is not None and outside.is_file() else b"absent")
    lock = project_root() / "requirements.lock"
    digest.update(lock.read_bytes() if lock.is_file() else b"no requirements.lock")
    digest.update(sys.version.encode())
    import torch  # device: "auto" means CUDA where torch sees a GPU: a page made without one differs

    digest.update(f"cuda devices {torch.cuda.device_count()}".encode())
    return digest.hexdigest()


def chapter_stamp(notebook: Path, parameters: Mapping[str, Any], upstream: Mapping[str, str] | None = None) -> str:
    """The stamp of a chapter run: ``parameters`` are the papermill parameters (config and label),
    ``upstream`` the stamps of the chapters it reads, by "label/chapter" (None: it reads none)."""
    payload = {
        "notebook": hashlib.sha256(Path(notebook).read_bytes()).hexdigest(),
        "parameters": parameters,
        "environment": _environment_digest(),
        "upstream": None if upstream is None else dict(sorted(upstream.items())),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stamp_path(output: Path) -> Path:
    return Path(output).with_suffix(SUFFIX)


def recorded(output: Path) -> str | None:
    """The stamp written when ``output`` was executed (None: none, or unreadable)."""
    try:
        return stamp_path(output).read_text().strip()
    except OSError:
        return None


def record(output: Path, stamp: str) -> None:
    """Write ``output``'s stamp whole (a temporary file renamed into place)."""
    path = stamp_path(output)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(stamp + "\n")
    os.replace(tmp, path)


def forget(output: Path) -> None:
    stamp_path(output).unlink(missing_ok=True)


def upstream(
    executed: Path, readers: Iterable[str], labels: Iterable[str], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The stamps of the executed chapters under ``executed`` (one folder per label) that a reader
    reads: those run under one of ``labels`` that are not ``readers`` themselves, by
    "label/chapter", with ``overrides`` (the stamps a build is about to make current) taking
    precedence. A run under any other label (a ``--set`` run, a config file's, a Lab session's)
    changes no reader's stamp."""
    found = {}
    skip, read = set(readers), set(labels)
    for path in sorted(Path(executed).glob(f"*/*{SUFFIX}")):
        if path.stem not in skip and path.parent.name in read:
            found[f"{path.parent.name}/{path.stem}"] = path.read_text().strip()
    for key, stamp in (overrides or {}).items():
        if key.split("/")[0] in read:
            found[key] = stamp
    return found
