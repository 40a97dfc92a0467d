"""Devices and training arithmetic: ``auto`` resolves where the chapter runs, a missing GPU is one
line, bfloat16 autocast and torch.compile train on this CPU. (No GPU here: the CUDA paths run
only where one is; ``on_model_device`` is a no-op on a CPU and is tested for that.)"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import torch

from robinterp import RobinterpError, device, models, train
from robinterp.codehash import stable_hash
from robinterp.experiments import common, robust_models
from tests.conftest import REPO
from tests.test_train import build, spec


def test_auto_is_cuda_exactly_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.resolve("auto") == "cpu" and device.resolve("cpu") == "cpu"
    with pytest.raises(RobinterpError, match="device cuda asked for, but torch .* sees no GPU"):
        device.resolve("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.resolve("auto") == "cuda" and device.resolve("cuda") == "cuda"
    with pytest.raises(RobinterpError, match="unknown device 'tpu'"):
        device.resolve("tpu")


def test_a_chapter_resolves_its_device_into_the_training_spec_that_keys_the_model(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = robust_models.RobustModelsConfig()
    assert cfg.device == "auto"
    specs = common.method_grid(cfg)
    assert {s.device for s in specs.values()} == {"cpu"}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = common.method_grid(cfg)
    assert {s.device for s in on_gpu.values()} == {"cuda"}
    first = next(iter(specs))
    assert stable_hash(specs[first]) != stable_hash(on_gpu[first]), "a GPU-trained model must not serve a CPU run"


def test_a_function_on_the_models_device_passes_through_untouched_when_they_agree():
    model = build()
    x = torch.rand(3, 1, 28, 28)
    seen = {}

    @device.on_model_device
    def probe(model, x, *, scale=2.0):
        seen["x"] = x
        return {"doubled": x * scale, "first": (x[:1],)}

    out = probe(model, x)
    assert seen["x"] is x and torch.equal(out["doubled"], 2 * x) and out["first"][0].shape == (1, 1, 28, 28)
    assert device.of(model) == torch.device("cpu") and device.of(torch.nn.Identity()) == torch.device("cpu")


def test_bfloat16_autocast_trains_float32_weights_to_a_different_accurate_model(blobs):
    full, half = build(), build()
    train.fit(full, blobs, spec())
    history = train.fit(half, blobs, spec(precision="bfloat16"))
    assert all(p.dtype == torch.float32 for p in half.parameters())
    assert history.loss.iloc[-1] < history.loss.iloc[0]
    assert train.accuracy(half, blobs) > 0.9
    assert any(not torch.equal(a, b) for a, b in zip(full.state_dict().values(), half.state_dict().values()))


@pytest.mark.slow
def test_torch_compile_trains_the_models_own_weights_as_eager_does(blobs):
    eager, compiled = build(), build()
    short = spec(epochs=0.5, method="pgd_at", method_params=(("eps", 0.1), ("steps", 2)))
    train.fit(eager, blobs, short)
    train.fit(compiled, blobs, dataclasses.replace(short, torch_compile=True))
    for (name, a), b in zip(eager.state_dict().items(), compiled.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-4), name  # compiled kernels may sum in another order


def test_train_specs_refuse_unknown_precisions_and_devices():
    with pytest.raises(RobinterpError, match="precision"):
        spec(precision="float16")
    with pytest.raises(RobinterpError, match="device"):
        spec(device="auto")  # a spec holds the resolved device
    assert models.predict(build(), torch.rand(2, 1, 28, 28)).device == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="where torch sees a GPU the check runs in full")
def test_the_gpu_check_stops_in_one_line_and_writes_nothing_without_a_gpu(tmp_path):
    out = tmp_path / "gpu_check"
    result = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh"],
        cwd=REPO,
        env={**os.environ, "PY": sys.executable, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"gpu_check: torch {torch.__version__} sees no GPU; run it on a machine with one"
    ]
    assert result.stdout == "" and not out.exists()
