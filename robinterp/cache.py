"""A content-addressed cache of trained models and computed tables.

An entry is a folder ``<cache>/<kind>/<key>/`` where ``key`` hashes the config,
the package version and the source of the modules that compute the entry. It holds its payload (weights as safetensors, tables
as CSV) and ``meta.json``: the config, the sha256 of every payload file, the
commit, library versions, wall time and metrics. Entries are written into a
temporary folder and renamed into place, so a killed run leaves no entry at all;
a file lock makes a second process wait for the first and then reuse its
result; an entry whose files do not match their recorded sha256 is reported,
removed and recomputed. Nothing here unpickles: loading runs no code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from robinterp import RobinterpError
from robinterp.codehash import stable_hash
from robinterp.paths import cache_root
from robinterp.provenance import provenance

META = "meta.json"

LEDGER: list[dict[str, Any]] = []
"""Every entry this process asked for, in order: its kind and key, what computing it cost (the wall
time its metadata recorded, on the hardware it names, whether computed now or read), the model a
measure's entry is of, and how deeply it was nested in another entry's computation (a ROAR
retraining inside its measure, a teacher inside its student's training). A chapter run saves it
(``robinterp.book``) so that ``--check`` can estimate other runs from what this one cost."""

_depth = 0


class CacheError(RobinterpError):
    """The cache folder cannot be used."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, waiting: str) -> Iterator[None]:
    """An exclusive lock on ``path`` (made if need be), held for the ``with`` block; when another
    process holds it, ``waiting`` is printed and the lock waited for."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(waiting, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as err:
            if err.errno not in NO_LOCKS:
                raise
            _warn_unlocked(path.parent, err)
            yield
            return
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)
"""What ``flock`` answers on a file system without file locks (an NFS mount without its lock
manager, some FUSE and object-store mounts)."""

_warned: set[Path] = set()


def _warn_unlocked(folder: Path, err: OSError) -> None:
    """Say once per folder that its entries go unlocked: two runs may then compute one entry twice,
    each written whole and renamed into place and read only after its sha256 is checked, so the
    cost is time, never a wrong entry."""
    if folder not in _warned:
        _warned.add(folder)
        print(
            f"robinterp: warning: {folder} does not support file locks ({err.strerror}); two runs may compute "
            "one entry twice (never a wrong one): a local disk, NFS with locking or Lustre with -o flock avoids it",
            file=sys.stderr,
            flush=True,
        )


def _remove(path: Path) -> None:
    """Remove a cache entry, or whatever stands in its place (a link is removed, not followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


META_LIMIT = 1 << 20
"""The most bytes a ``meta.json`` may hold (a real one holds a few kB)."""


def _read_small(path: Path) -> str:
    """A metadata file's text, from a regular file only (not a link, a FIFO or a device, which
    could block or never end) and at most ``META_LIMIT`` bytes."""
    if path.is_symlink() or not path.is_file():
        raise ValueError(f"{path.name} is a link or not a regular file")
    with open(path, "rb") as fh:
        text = fh.read(META_LIMIT + 1)
    if len(text) > META_LIMIT:
        raise ValueError(f"{path.name} holds more than {META_LIMIT} bytes")
    return text.decode()


def _check_entry(folder: Path, key: str) -> dict[str, Any]:
    """The entry's metadata, or ValueError saying why the folder is not the entry for ``key``."""
    if folder.is_symlink() or not folder.is_dir():
        raise ValueError("it is a link or not a folder")
    meta = json.loads(_read_small(folder / META))
    if meta["key"] != key:
        raise ValueError(f"it holds the entry {str(meta['key'])[:16]}, not {key[:16]}")
    if not meta["files"]:
        raise ValueError("it lists no files")
    present = {p.name for p in folder.iterdir()}
    if present != {*meta["files"], META}:
        raise ValueError(f"its files {sorted(present)[:5]} are not the ones it lists")
    for name, digest in meta["files"].items():
        if (folder / name).is_symlink() or not (folder / name).is_file():
            raise ValueError(f"{name} is a link or not a file")
        if _sha256(folder / name) != digest:
            raise ValueError(f"{name} does not match its recorded sha256")
    return meta


def _read_entry(folder: Path) -> dict[str, Any] | None:
    """The metadata of the entry keyed by the folder's name if every file is there, intact and
    its own (not a link to another entry's), else None after a warning and the folder's removal."""
    if not (folder.exists() or folder.is_symlink()):
        return None
    try:
        return _check_entry(folder, folder.name)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        warnings.warn(f"cache entry {folder} is damaged ({err}); removing it and recomputing", stacklevel=3)
        _remove(folder)
        return None


def verified_entry(kind: str, key: str, root: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder and metadata of the entry ``key`` of ``kind``, every file checked against its
    recorded sha256, without computing anything: a CacheError if it is missing or damaged."""
    folder = Path(root or cache_root()) / kind / key
    if not (folder.exists() or folder.is_symlink()):
        raise CacheError(f"no {kind} entry {key} in {folder.parent}: the run that makes it has not run here")
    try:
        return folder, _check_entry(folder, key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise CacheError(f"cache entry {folder} is damaged ({err}); rerun the chapter that makes it") from None


def _write_entry(folder: Path, write_payload: Callable[[Path], None], meta: dict[str, Any]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it 0700: others sharing the cache could not read
    try:
        write_payload(tmp)
        meta["files"] = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
        (tmp / META).write_text(json.dumps(meta, indent=2, default=str))
        for p in tmp.iterdir():  # durable before the rename makes the entry visible
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
        _remove(folder)
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def entry(
    kind: str,
    key_obj: Any,
    compute: Callable[[], tuple[Any, dict[str, Any]]],
    save: Callable[[Any, Path], None],
    load: Callable[[Path], Any],
    root: Path | None = None,
    code: tuple[str, ...] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Load the entry keyed by ``key_obj`` or compute, save and return it.

    ``compute`` returns (value, metrics); the metadata returned holds the config,
    provenance, wall time, metrics and whether the value came from the cache.
    ``code`` names the modules whose source (with what they import) keys the
    entry besides ``key_obj``; None keys it by the whole package.
    """
    global _depth
    root = Path(root or cache_root())
    key = stable_hash(key_obj, code=code)
    folder = root / kind / key
    try:
        (root / kind).mkdir(parents=True, exist_ok=True)
        probe = root / kind / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
    except OSError as err:
        # a complete cache on a read-only mount (a shared, published one) serves what it holds: an
        # intact entry needs no lock and no write; only a missing one is an error
        found = _read_only_entry(folder, key, load)
        if found is not None:
            _note(found[1], computed=False)
            return found
        raise CacheError(
            f"cannot write to the cache folder {root / kind} ({err.strerror}); "
            f"make it writable or set ROBINTERP_CACHE to another folder"
        ) from None
    with file_lock(root / kind / f"{key}.lock", f"another run is computing this entry; waiting for it ({folder})"):
        for leftover in (root / kind).glob(f".{key}.*"):  # from a run killed mid-write
            shutil.rmtree(leftover, ignore_errors=True)
        meta = _read_entry(folder)
        if meta is not None:
            try:
                value = load(folder)
                _note(meta, computed=False)
                return value, {**meta, "from_cache": True}
            except Exception as err:  # intact files that no longer load: recompute
                warnings.warn(f"cache entry {folder} does not load ({type(err).__name__}); recomputing", stacklevel=2)
                _remove(folder)
        start = time.perf_counter()
        _depth += 1
        try:
            value, metrics = compute()
        finally:
            _depth -= 1
        config = dataclasses.asdict(key_obj) if dataclasses.is_dataclass(key_obj) else key_obj
        meta = {
            "kind": kind,
            "key": key,
            "config": config,
            "metrics": metrics,
            "wall_seconds": round(time.perf_counter() - start, 3),
            **provenance(),
        }
        _write_entry(folder, lambda tmp: save(value, tmp), meta)
        _note(meta, computed=True)
        return value, {**meta, "from_cache": False}


def _note(meta: dict[str, Any], computed: bool) -> None:
    """Add an entry to ``LEDGER``: a model's training spec (its cost per epoch estimates others), a
    measure's model (its evaluation is per model)."""
    config = meta.get("config")
    config = config if isinstance(config, dict) else {}
    LEDGER.append(
        {
            "kind": meta.get("kind"),
            "key": meta.get("key"),
            "seconds": meta.get("wall_seconds"),
            "hardware": meta.get("hardware"),
            "computed": computed,
            "depth": _depth,
            "spec": config if meta.get("kind") == "models" and "method" in config else None,
            "continued_from": (meta.get("metrics") or {}).get("continued_from"),
            "of_model": config.get("model") if meta.get("kind") != "models" else None,
        }
    )


def _read_only_entry(folder: Path, key: str, load: Callable[[Path], Any]) -> tuple[Any, dict[str, Any]] | None:
    """The intact entry in ``folder`` of a cache that cannot be written, or None (missing or damaged:
    nothing can be removed or recomputed there)."""
    try:
        meta = _check_entry(folder, key)
        return load(folder), {**meta, "from_cache": True}
    except Exception:  # missing, damaged or not loadable: the caller's error says why it cannot write
        return None


def cached_model(
    spec: Any,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], dict[str, Any]],
    root: Path | None = None,
    code: tuple[str, ...] | None = None,
    save_more: Callable[[Path], None] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """A trained model for ``spec``: from the cache, or built, trained and stored.

    ``train`` trains the model in place and returns its metrics (history...);
    ``code`` names the modules the model depends on (``robinterp.train.model_code``);
    ``save_more`` writes further files into a new entry's folder (where its training stopped).
    """

    def compute() -> tuple[nn.Module, dict[str, Any]]:
        model = build()
        return model, train(model)

    def save(model: nn.Module, folder: Path) -> None:
        # on the CPU: an entry trained on a GPU loads anywhere (the loader moves it to its spec's device)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
            str(folder / "weights.safetensors"),
        )
        if save_more is not None:
            save_more(folder)

    def load(folder: Path) -> nn.Module:
        model = build()
        model.load_state_dict(load_file(str(folder / "weights.safetensors")))
        return model.eval()

    model, meta = entry("models", spec, compute, save, load, root, code=code)
    return model.eval(), meta


def intact_entry(kind: str, key: str, root: Path | None = None) -> tuple[Path, dict[str, Any]] | None:
    """The folder and metadata of the complete, intact entry ``key`` of ``kind``, or None (missing
    or damaged: nothing is removed here, the entry's own reader does that)."""
    folder = Path(root or cache_root()) / kind / key
    try:
        return folder, _check_entry(folder, key)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


TRAJECTORIES = "trajectories"
"""Where the cache notes, per training trajectory (``robinterp.train.trajectory_key``), which model
entry stopped after how many steps: a longer run of it continues from the longest one."""


def note_stop(trajectory: str, step: int, key: str, root: Path | None = None) -> None:
    """Note that the model entry ``key`` is ``trajectory`` stopped after ``step`` steps."""
    folder = Path(root or cache_root()) / TRAJECTORIES / trajectory
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{step}.{os.getpid()}"
    partial.write_text(key)
    os.replace(partial, folder / str(step))  # complete or absent


def stops(trajectory: str, root: Path | None = None) -> dict[int, str]:
    """The noted stops of ``trajectory``: model entry keys by step."""
    folder = Path(root or cache_root()) / TRAJECTORIES / trajectory
    if not folder.is_dir():
        return {}
    found = {}
    for note in folder.iterdir():
        if not note.name.isdigit():
            continue
        try:
            key = _read_small(note).strip()
        except (OSError, ValueError):  # a link, a FIFO, unreadable: not a note this cache wrote
            continue
        if key.isalnum():
            found[int(note.name)] = key
    return found


def as_stored(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` as a CSV round trip gives it back (float64 survives it exactly)."""
    return pd.read_csv(io.StringIO(table.to_csv(index=False)))


def cached_table(
    key_obj: Any, compute: Callable[[], pd.DataFrame], root: Path | None = None, code: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """A results table for ``key_obj``: from the cache, or computed and stored as CSV.

    A computed table is returned as the cache will read it back (the CSV's types), so a cold
    and a warm run give the same frame. ``code``: the modules that compute it (the caller's
    ``__name__``); None for the whole package.
    """
    table, _meta = entry(
        "results",
        key_obj,
        lambda: (as_stored(compute()), {}),
        lambda df, folder: df.to_csv(folder / "table.csv", index=False),
        lambda folder: pd.read_csv(folder / "table.csv"),
        root,
        code=code,
    )
    return table


def load_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """Tensors from a checkpoint file without running any code in it.

    safetensors files are plain data; a torch pickle is read with
    ``weights_only=True``, which refuses anything but tensors and containers.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RobinterpError(
            f"{path} is not a plain tensor checkpoint and was not loaded "
            f"({type(err).__name__}); convert it to safetensors"
        ) from None
