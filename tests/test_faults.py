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
    return subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "marker"), str(sleep)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ.copy())


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
