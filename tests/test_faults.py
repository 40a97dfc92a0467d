"""Fault injection: processes killed mid-write, two runs of one config at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from robinterp.paths import cache_root
from tests.conftest import REPO

# A child that computes one cached table slowly: it writes a marker per compute
# and sleeps inside the computation, so the parent can kill or race it.
CHILD = textwrap.dedent("""
    import sys, time, pandas as pd
    from pathlib import Path
    from robinterp import cache
    marker = Path(sys.argv[1])
    def compute():
        with open(marker, "a") as fh:
            fh.write("computed\\n")
        time.sleep(float(sys.argv[2]))
        return pd.DataFrame({"x": range(100_000)})
    table = cache.cached_table({"fault": "test"}, compute)
    print(len(table))
""")


def spawn(tmp_path, sleep: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "marker"), str(sleep)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )


def entries():
    folder = cache_root() / "results"
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.5, 3.0, 4.5])
def test_sigkill_at_any_point_leaves_no_readable_half_entry_and_a_rerun_finishes(tmp_path, kill_after):
    child = spawn(tmp_path, sleep=1.0)
    time.sleep(kill_after)  # before, during or (maybe) after the computation and the write
    child.send_signal(signal.SIGKILL)
    child.wait()
    for name in entries():
        # whatever is left is either a complete entry or a hidden temporary folder
        assert name.startswith(".") or (cache_root() / "results" / name / "meta.json").exists()
    rerun = spawn(tmp_path, sleep=0.0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert out.strip() == "100000"
    assert [name for name in entries() if name.startswith(".")] == [], "temporary folder left"


@pytest.mark.slow
def test_two_runs_of_one_config_compute_once(tmp_path):
    # both children import torch (seconds) before reaching the lock: the first computes
    # long enough for the second to arrive while it holds the lock
    first = spawn(tmp_path, sleep=8.0)
    time.sleep(0.3)
    second = spawn(tmp_path, sleep=8.0)
    outs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert [o.strip().splitlines()[-1] for o, _ in outs] == ["100000", "100000"]
    assert (tmp_path / "marker").read_text().count("computed") == 1
    # whichever reached the lock second says it waits (imports race, so either may)
    assert sum("waiting for it" in out for out, _ in outs) == 1, "a run waited silently"


# A child that trains one small model through the book's cached path and prints a
# digest of its weights: the rerun after a kill must give the uninterrupted weights.
TRAIN_CHILD = textwrap.dedent("""
    import hashlib
    from robinterp import train
    spec = train.TrainSpec(dataset="mnist", train_size=1024, model="small_cnn", width=8,
                           method="pgd_at", method_params=(("eps", 0.3), ("steps", 3)),
                           epochs=1, batch_size=64, seed=3)
    model, meta = train.trained_model(spec)
    digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes()
                                     for t in model.state_dict().values())).hexdigest()
    print("from_cache" if meta["from_cache"] else "trained", digest)
""")


def train_child(cache: os.PathLike) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRAIN_CHILD],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ROBINTERP_CACHE": str(cache)},
    )


@pytest.mark.slow
def test_a_training_run_killed_mid_way_reruns_to_the_uninterrupted_weights(tmp_path):
    reference = train_child(tmp_path / "uninterrupted")
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err
    status, expected = out.split()[-2:]
    assert status == "trained"
    interrupted = tmp_path / "interrupted"
    for kill_after in (2.0, 6.0):  # while importing or training, then (likely) while training
        child = train_child(interrupted)
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
        child.wait()
        models_folder = interrupted / "models"
        for entry in models_folder.iterdir() if models_folder.exists() else []:
            assert entry.name.startswith(".") or entry.name.endswith(".lock") or (entry / "meta.json").exists(), (
                f"half-written entry {entry.name}"
            )
    rerun = train_child(interrupted)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert out.split()[-1] == expected, "the rerun after a kill trained different weights"
    again = train_child(interrupted)
    out, err = again.communicate(timeout=300)
    assert out.split()[-2:] == ["from_cache", expected]


SWEEP_CONFIG = """robust_models:
  train_size: 256
  seeds: [0]
  accuracy_size: 100
  epochs: 0.5
  methods:
    standard: {{method: standard}}
    PGD-AT: {{method: pgd_at, eps: {eps}, steps: 2, eps_warmup: 0.25, epochs: 0.5}}
  eval_size: 32
  epsilons: [0.0, 0.3]
  attacks:
    fgsm: {{attack: fgsm}}
    pgd: {{attack: pgd, steps: 2}}
    mifgsm: {{attack: mifgsm, steps: 2}}
  saliency_images: 2
  alignment_size: 32
"""


@pytest.mark.slow
def test_a_sweep_killed_mid_way_reruns_to_completion_with_equal_results(tmp_path):
    from robinterp.paths import build_root

    configs = []
    for name, eps in (("first", 0.1), ("second", 0.2)):
        configs += ["--config", str(tmp_path / f"{name}.yml")]
        (tmp_path / f"{name}.yml").write_text(SWEEP_CONFIG.format(eps=eps))
    command = [sys.executable, "-m", "robinterp", "sweep", "robust_models", *configs]
    sweeps, results = build_root() / "sweeps" / "robust_models", build_root() / "results"
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (sweeps / "config-first.ipynb").exists() and child.poll() is None:
        assert time.monotonic() < deadline, "the first config of the sweep never finished"
        time.sleep(0.2)
    assert child.poll() is None, child.stderr.read()
    first_pass = (results / "config-first" / "robust_models" / "robust_accuracy.csv").read_text()
    time.sleep(3)  # into the second config's kernel or training
    child.send_signal(signal.SIGKILL)  # the kernel's parent poller ends the orphaned kernel
    child.wait()
    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    # each executed notebook with its stamp (robinterp.stamps), nothing else
    assert sorted(p.name for p in sweeps.iterdir()) == [
        "config-first.ipynb",
        "config-first.stamp",
        "config-second.ipynb",
        "config-second.stamp",
    ], "an orphaned temporary notebook or a missing result"
    assert (results / "config-first" / "robust_models" / "robust_accuracy.csv").read_text() == first_pass
    assert (results / "config-second" / "robust_models" / "robust_accuracy.csv").exists()
