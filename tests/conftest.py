"""Shared fixtures: isolated data/cache/build folders and small real-format data files."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from robinterp import data

REPO = Path(__file__).resolve().parent.parent


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def pytest_configure(config):
    """Under pytest-xdist each worker gets its share of the cores, for torch in the worker and
    (through the environment) in the kernels and subprocesses it starts: two workers that each
    run torch on every core oversubscribe it, and the end-to-end tests then ran up to 3x slower
    than alone."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        share = str(max(1, (os.cpu_count() or 1) // int(workers)))
        os.environ.update({name: share for name in THREAD_VARIABLES})
        torch.set_num_threads(int(share))


def pytest_collection_modifyitems(items):
    """The end-to-end tests first, the smoke book before them all: with pytest-xdist's workers
    (make test) the longest tests start at once instead of last, so that no worker idles at the
    end while one of them runs alone."""
    items.sort(key=lambda item: ("longest" not in item.keywords, "slow" not in item.keywords))


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path, monkeypatch):
    """Every test writes its cache and build output under its own tmp folder."""
    monkeypatch.setenv("ROBINTERP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ROBINTERP_BUILD", str(tmp_path / "build"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    yield


@pytest.fixture
def shared_smoke_cache(tmp_path_factory, monkeypatch):
    """One model and table cache for every test of this run whose subject is not the cache (the
    smoke book, the documented commands, the toy method): the smoke models are trained once, by
    whichever of them runs first, instead of once per test. The cache's keys follow the code and
    its file locks make concurrent runs wait for one another, so sharing it changes no result;
    with pytest-xdist every worker of the run shares it, and no later run does."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    monkeypatch.setenv("ROBINTERP_CACHE", str(root / "shared-smoke-cache"))
    return root / "shared-smoke-cache"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """The command line in this process (``cli.main``, what ``python -m robinterp`` calls), its
    exit code and output as a subprocess would give them: a subprocess spent 4 s per call
    importing torch before a one-line error. The real entry point runs as a subprocess in
    test_runner's test_cli_unwritable_build_folder_is_one_line_and_writes_nothing and the
    end-to-end tests."""
    from robinterp import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exit_:  # argparse's own errors and --help
            code = exit_.code or 0
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (the MNIST format): magic, dims, then uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_mnist(tmp_path):
    """A data root with small MNIST-format IDX files and a spec carrying their checksums."""
    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    sizes = {"train": 40, "t10k": 20}
    for prefix, n in sizes.items():
        write_idx(root / "MNIST/raw" / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / "MNIST/raw" / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    spec = data.get_spec("mnist")
    checksums = tuple((name, sha256(root / "MNIST/raw" / name)) for name, _ in spec.checksums)
    import dataclasses

    return root, dataclasses.replace(spec, checksums=checksums, offline_source=None)


@pytest.fixture
def tiny_cifar(tmp_path, monkeypatch):
    """A data root with small CIFAR-10-format pickles; torchvision's md5 lists point at them."""
    from torchvision.datasets import CIFAR10

    root = tmp_path / "data"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        batch = {"data": rng.integers(0, 256, (6, 3072), dtype=np.uint8), "labels": list(range(6))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))

    def md5(name):
        return hashlib.md5((folder / name).read_bytes()).hexdigest()

    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(n)] for n in names[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5("test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5("batches.meta")})
    return root


class Linear2(nn.Module):
    """f(x) = W x on a 1x1x2 'image': small enough to check attacks by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2, 2, bias=False)
        self.fc.weight.data = torch.eye(2)

    def forward(self, x):
        return self.fc(self.flatten(x))


class CountingForwards(torch.nn.Module):
    """A real model that counts its forward passes and the images they carry."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model, self.calls, self.images = model, 0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += len(x)
        return self.model(x)


@pytest.fixture
def tiny_cnn():
    torch.manual_seed(0)
    from robinterp import models

    return models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)


@pytest.fixture
def fitted_tiny_cnn(tiny_cnn, blobs):
    """``tiny_cnn`` after one epoch on ``blobs``: predictions that mean something, in eval mode."""
    optimizer = torch.optim.Adam(tiny_cnn.parameters(), lr=1e-2)
    for xb, yb in blobs.batches(50, shuffle=True, seed=0):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(tiny_cnn(xb), yb).backward()
        optimizer.step()
    return tiny_cnn.eval()


@pytest.fixture
def blobs():
    """A separable 10-class problem on 28x28 images: class c lights up row block c."""
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 10
    x = torch.rand(200, 1, 28, 28, generator=g) * 0.2
    for c in range(10):
        x[y == c, :, 2 * c : 2 * c + 3, :] += 0.7
    return data.Split(x.clamp(0, 1), y)


def need_chromium() -> None:
    """Skip a browser test where no Chromium is installed, except under CI (``CI=true``), whose
    ``.ci/run`` installs it: there a missing browser is a failure, not a silent skip."""
    import shutil

    if shutil.which("chromium") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true and no Chromium: .ci/run installs it (apt-get install chromium)")
        pytest.skip("no Chromium for the browser check (apt-get install chromium)")


def user_module(folder: Path, monkeypatch, name: str, source: str, environment: str) -> Path:
    """A user's module outside the package (a training method, an attack): written into
    ``folder``, put on sys.path and PYTHONPATH (for kernels) and named in the registry's
    ``environment`` variable."""
    folder.mkdir()
    (folder / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(environment, name)
    return folder
