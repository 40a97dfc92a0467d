"""Cache: round trip, reuse, atomic writes, damage detection, no code run on load."""

from __future__ import annotations

import json
import os
import pickle

import pandas as pd
import pytest
import torch

from robinterp import RobinterpError, cache, models, train
from robinterp.paths import cache_root


def build():
    torch.manual_seed(0)
    return models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=4)


SPEC = train.TrainSpec(model="small_cnn", width=4, epochs=1.0)


def perturb(model):
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    return {"loss": 1.25}


def test_model_round_trip_then_reuse_without_training():
    first, meta = cache.cached_model(SPEC, build, perturb)
    assert not meta["from_cache"] and meta["metrics"] == {"loss": 1.25}

    def must_not_train(model):
        raise AssertionError("a cached model was retrained")

    second, meta2 = cache.cached_model(SPEC, build, must_not_train)
    assert meta2["from_cache"] and meta2["key"] == meta["key"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    sidecar = json.loads((cache_root() / "models" / meta["key"] / "meta.json").read_text())
    assert {"config", "commit", "versions", "wall_seconds", "metrics", "files"} <= set(sidecar)
    assert sidecar["config"]["seed"] == 0


@pytest.mark.parametrize("damage", ["truncate", "flip", "bad_json"])
def test_a_damaged_entry_is_reported_and_recomputed(damage):
    _, meta = cache.cached_model(SPEC, build, perturb)
    folder = cache_root() / "models" / meta["key"]
    weights = folder / "weights.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:50])
    elif damage == "flip":
        raw = bytearray(weights.read_bytes())
        raw[-1] ^= 0xFF
        weights.write_bytes(bytes(raw))
    else:
        (folder / "meta.json").write_text("{not json")
    calls = []
    with pytest.warns(UserWarning, match="damaged"):
        _, meta2 = cache.cached_model(SPEC, build, lambda m: calls.append(1) or perturb(m))
    assert calls == [1] and not meta2["from_cache"]
    assert cache.cached_model(SPEC, build, perturb)[1]["from_cache"]


def test_a_computation_that_dies_leaves_no_entry():
    def dies(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached_model(SPEC, build, dies)
    folder = cache_root() / "models"
    assert [p.name for p in folder.iterdir() if not p.name.endswith(".lock")] == []


def test_tables_round_trip():
    df = pd.DataFrame({"attack": ["pgd", "fgsm"], "eps": [0.1, 0.3], "accuracy": [0.5, 0.25]})
    out = cache.cached_table({"k": 1}, lambda: df)
    again = cache.cached_table({"k": 1}, lambda: pytest.fail("recomputed"))
    pd.testing.assert_frame_equal(out, again)


def test_a_table_computed_under_other_library_versions_is_computed_again(monkeypatch):
    """After an upgrade of torch (or captum, quantus, numpy, scipy, torchvision) the cache must not
    serve what the old release computed: the versions are part of every key."""
    from robinterp import codehash

    df = pd.DataFrame({"accuracy": [0.5]})
    cache.cached_table({"k": 1}, lambda: df)
    upgraded = {**codehash.numeric_versions(), "torch": "99.0"}
    monkeypatch.setattr(codehash, "numeric_versions", lambda: upgraded)
    calls = []
    cache.cached_table({"k": 1}, lambda: calls.append(1) or df)
    assert calls == [1]
    assert set(codehash.NUMERIC_LIBRARIES) == {"torch", "torchvision", "captum", "quantus", "numpy", "scipy"}


def test_a_complete_cache_on_a_read_only_mount_serves_what_it_holds(monkeypatch):
    """It was refused though nothing needed writing: an intact entry is read without a lock; a missing
    one is still the one-line error."""
    import errno
    import pathlib

    df = pd.DataFrame({"accuracy": [0.5]})
    cache.cached_table({"k": "held"}, lambda: df)
    touch = pathlib.Path.touch

    def read_only(self, *args, **kwargs):  # what a read-only mount answers the write probe
        if self.name.startswith(".write-test-"):
            raise OSError(errno.EROFS, "Read-only file system")
        return touch(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "touch", read_only)
    served = cache.cached_table({"k": "held"}, lambda: pytest.fail("recomputed on a read-only cache"))
    pd.testing.assert_frame_equal(served, df)
    with pytest.raises(cache.CacheError, match="cannot write to the cache folder .*Read-only file system"):
        cache.cached_table({"k": "missing"}, lambda: df)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_an_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    monkeypatch.setenv("ROBINTERP_CACHE", str(ro))
    with pytest.raises(cache.CacheError, match="cannot write to the cache folder"):
        cache.cached_model(SPEC, build, perturb)


def test_an_unwritable_cache_path_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ROBINTERP_CACHE", str(blocker))
    with pytest.raises(cache.CacheError, match="ROBINTERP_CACHE"):
        cache.cached_model(SPEC, build, perturb)


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the crafted file's protocol
def test_a_crafted_pickle_checkpoint_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"weight": Exploit(marker)}))
    pickle.loads(path.read_bytes())  # the payload works when unpickled naively...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(RobinterpError, match="not a plain tensor checkpoint"):
        cache.load_checkpoint(path)  # ...and runs nothing through robinterp
    assert not marker.exists()


def test_plain_checkpoints_load(tmp_path):
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(cache.load_checkpoint(tmp_path / "ok.pt")["w"], torch.ones(2))


OTHER = train.TrainSpec(model="small_cnn", width=4, epochs=2.0)


def swap_in(folder, other, how):
    """Put another valid entry where ``folder`` was: as a link, a copy, or a link to one file."""
    import shutil

    shutil.rmtree(folder)
    if how == "folder link":
        folder.symlink_to(other, target_is_directory=True)
    elif how == "copy":
        shutil.copytree(other, folder)
    else:  # a real folder whose files are links to the other entry's
        folder.mkdir()
        for f in other.iterdir():
            (folder / f.name).symlink_to(f)


@pytest.mark.parametrize("how", ["folder link", "copy", "file links"])
def test_another_entry_in_an_entrys_place_is_damage_not_served(how):
    """A model folder replaced by (a link to) another valid entry was loaded silently: the
    'standard' row showed the PGD model. The stored key must be the key asked for."""
    _, meta = cache.cached_model(SPEC, build, perturb)
    _, other_meta = cache.cached_model(OTHER, build, lambda m: {"loss": 9.0})
    models_dir = cache_root() / "models"
    swap_in(models_dir / meta["key"], models_dir / other_meta["key"], how)
    with pytest.warns(UserWarning, match="damaged"):
        model, again = cache.cached_model(SPEC, build, perturb)
    assert not again["from_cache"] and again["metrics"] == {"loss": 1.25}
    assert (models_dir / meta["key"]).is_dir() and not (models_dir / meta["key"]).is_symlink()
    assert cache.cached_model(OTHER, build, perturb)[1]["from_cache"], "the other entry was harmed"


def test_a_stray_file_in_an_entry_is_damage():
    df = pd.DataFrame({"a": [1]})
    cache.cached_table({"k": 2}, lambda: df)
    (folder,) = [p for p in (cache_root() / "results").iterdir() if p.is_dir()]
    (folder / "extra.csv").write_text("a\n2\n")
    with pytest.warns(UserWarning, match="not the ones it lists"):
        assert cache.cached_table({"k": 2}, lambda: df).equals(df)
    assert not (folder / "extra.csv").exists()


@pytest.mark.parametrize("how", ["link to /dev/zero", "fifo", "two megabytes"])
def test_a_tampered_meta_json_is_read_with_a_bound_and_recomputed(how):
    """A meta.json made a link to /dev/zero was read without bound (a memory error), a FIFO
    blocked the run forever: metadata is read from regular files only, at most 1 MiB."""
    df = pd.DataFrame({"accuracy": [0.5]})
    cache.cached_table({"k": how}, lambda: df)
    (folder,) = [p for p in (cache_root() / "results").iterdir() if p.is_dir()]
    meta = folder / cache.META
    meta.unlink()
    if how == "link to /dev/zero":
        meta.symlink_to("/dev/zero")
    elif how == "fifo":
        os.mkfifo(meta)
    else:
        meta.write_text(" " * (2 << 20))
    calls = []
    with pytest.warns(UserWarning, match="damaged"):
        cache.cached_table({"k": how}, lambda: calls.append(1) or df)
    assert calls == [1]


def test_a_file_system_without_locks_warns_once_and_still_writes_whole_entries(tmp_path, monkeypatch, capsys):
    """flock fails with ENOLCK on an NFS mount without its lock manager (and on some FUSE mounts):
    that was an 'unexpected OSError'. Entries stay safe without the lock (written whole, renamed
    into place, checked on reading), so the cache says once what it costs and goes on."""
    import errno
    import fcntl

    real = fcntl.flock

    def no_locks(fh, operation):
        if operation & fcntl.LOCK_EX:
            raise OSError(errno.ENOLCK, "No locks available")
        return real(fh, operation)

    monkeypatch.setattr(cache.fcntl, "flock", no_locks)
    root = tmp_path / "cache"
    first = cache.cached_table({"table": 1}, lambda: pd.DataFrame({"x": [1, 2]}), root=root)
    again = cache.cached_table({"table": 1}, lambda: pd.DataFrame({"x": [9]}), root=root)  # read, not computed
    cache.cached_table({"table": 2}, lambda: pd.DataFrame({"x": [3]}), root=root)
    pd.testing.assert_frame_equal(first, again)
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and "does not support file locks (No locks available)" in warning[0]
    assert len(warning[0]) < 300
