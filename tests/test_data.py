"""The real loading code on small files the tests write: IDX, CIFAR pickles, checksums."""

from __future__ import annotations

import dataclasses
import os

import pytest
import torch

from robinterp import data, data_sources


def test_idx_files_load_as_float_images_in_unit_range(tiny_mnist):
    root, spec = tiny_mnist
    train = data.load("mnist", "train", root, spec=spec, allow_download=False)
    test = data.load("mnist", "test", root, spec=spec, allow_download=False)
    assert train.images.shape == (40, 1, 28, 28) and test.images.shape == (20, 1, 28, 28)
    assert train.images.dtype == torch.float32
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0
    assert train.labels.tolist() == [i % 10 for i in range(40)]


def test_checksum_mismatch_is_a_one_line_error_naming_the_file(tiny_mnist):
    root, spec = tiny_mnist
    path = root / "MNIST/raw/train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3] + b"\x01\x02\x03")
    with pytest.raises(data.DataError) as err:
        data.load("mnist", "train", root, spec=spec, allow_download=False)
    message = str(err.value)
    assert "train-labels-idx1-ubyte" in message and "sha256" in message
    assert "robinterp data fetch mnist" in message and "\n" not in message


def test_files_are_hashed_once_until_they_change(tiny_mnist, monkeypatch):
    root, spec = tiny_mnist
    data.load("mnist", "test", root, spec=spec, allow_download=False)
    monkeypatch.setattr(data.hashlib, "new", lambda name: pytest.fail("verified files hashed again"))
    data.load("mnist", "test", root, spec=spec, allow_download=False)
    monkeypatch.undo()
    path = root / "MNIST/raw/t10k-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x07")  # same size, written later
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte has the wrong sha256"):
        data.load("mnist", "test", root, spec=spec, allow_download=False)


def test_truncated_idx_file_is_caught_before_torchvision_reads_it(tiny_mnist):
    root, spec = tiny_mnist
    path = root / "MNIST/raw/t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(data.DataError, match="corrupted or truncated"):
        data.load("mnist", "test", root, spec=spec, allow_download=False)


def test_missing_file_without_any_source_says_how_to_get_it(tiny_mnist):
    root, spec = tiny_mnist
    (root / "MNIST/raw/train-images-idx3-ubyte").unlink()
    spec = dataclasses.replace(spec, offline_source=None)
    with pytest.raises(data.DataError, match="missing .*train-images-idx3-ubyte.*copy the four"):
        data.load("mnist", "train", root, spec=spec, allow_download=False)


def test_a_failing_offline_source_ends_in_a_clear_error_not_a_traceback(tiny_mnist, monkeypatch):
    root, spec = tiny_mnist
    (root / "MNIST/raw/train-images-idx3-ubyte").unlink()

    def broken(spec, root):
        raise OSError("registry unreachable")

    monkeypatch.setattr(data_sources, "torchvision_download", broken)
    spec = dataclasses.replace(spec, offline_source=broken)
    with pytest.raises(data.DataError, match="missing"):
        data.ensure("mnist", root, spec=spec)


def test_a_file_failing_its_checksum_is_kept_and_named_when_nothing_replaces_it(tiny_mnist, monkeypatch):
    """It was deleted, and the message then said 'missing'."""
    root, spec = tiny_mnist
    target = root / "MNIST/raw/train-images-idx3-ubyte"
    target.write_bytes(b"the user's own, damaged copy")
    before = sorted(p.name for p in target.parent.iterdir())

    def broken(spec, root):
        raise OSError("registry unreachable")

    monkeypatch.setattr(data_sources, "torchvision_download", broken)
    with pytest.raises(data.DataError) as err:
        data.ensure("mnist", root, spec=dataclasses.replace(spec, offline_source=broken))
    assert "wrong sha256" in str(err.value) and "no source could replace it" in str(err.value)
    assert "missing" not in str(err.value) and "\n" not in str(err.value)
    assert target.read_bytes() == b"the user's own, damaged copy"
    assert sorted(p.name for p in target.parent.iterdir()) == before


@pytest.mark.parametrize("where", ["a file", "read-only and empty", "under a file"])
def test_a_data_folder_that_cannot_hold_data_is_one_line_naming_it(tmp_path, where):
    import os

    if where == "a file":
        root = tmp_path / "data"
        root.write_text("not a folder")
        needle = "is a file, not a folder"
    elif where == "read-only and empty":
        if os.geteuid() == 0:
            pytest.skip("root writes to read-only folders")
        root = tmp_path / "data"
        root.mkdir()
        root.chmod(0o555)
        needle = "cannot write to the data folder"
    else:
        (tmp_path / "blocker").write_text("x")
        root = tmp_path / "blocker" / "data"
        needle = "cannot write to the data folder"
    with pytest.raises(data.DataError) as err:
        data.ensure("mnist", root)
    message = str(err.value)
    assert needle in message and "ROBINTERP_DATA" in message and "\n" not in message and len(message) < 300


def test_offline_source_is_used_and_verified(tiny_mnist, monkeypatch):
    root, spec = tiny_mnist
    target = root / "MNIST/raw/train-images-idx3-ubyte"
    good = target.read_bytes()
    target.write_bytes(b"garbage")  # a corrupted file must be replaced, not trusted
    calls = []

    def source(spec, root):
        calls.append(1)
        target.write_bytes(good)

    monkeypatch.setattr(data_sources, "torchvision_download", lambda spec, root: None)
    data.ensure("mnist", root, spec=dataclasses.replace(spec, offline_source=source))
    assert calls == [1] and target.read_bytes() == good


def test_cifar_format_pickles_load_channels_first(tiny_cifar):
    split = data.load("cifar10", "train", tiny_cifar, allow_download=False)
    assert split.images.shape == (30, 3, 32, 32)
    assert data.load("cifar10", "test", tiny_cifar, allow_download=False).labels.tolist() == list(range(6))


def test_cifar_without_files_fails_fast_with_instructions(tmp_path):
    with pytest.raises(data.DataError, match="no offline source exists"):
        data.load("cifar10", "test", tmp_path, allow_download=False)


@pytest.mark.parametrize("name,split", [("imagenet", "train"), ("mnist", "validation")])
def test_unknown_data_set_or_split(tmp_path, name, split):
    with pytest.raises(data.DataError, match="unknown"):
        data.load(name, split, tmp_path, allow_download=False)


def test_subset_is_seeded_and_batches_cover_every_sample(blobs):
    a, b, c = blobs.subset(50, seed=1), blobs.subset(50, seed=1), blobs.subset(50, seed=2)
    assert torch.equal(a.labels, b.labels) and not torch.equal(a.images, c.images)
    seen = torch.cat([y for _, y in blobs.batches(64, shuffle=True, seed=3)])
    assert sorted(seen.tolist()) == sorted(blobs.labels.tolist())


def test_split_partitions_without_overlap_and_is_seeded(blobs):
    a, b = blobs.split(0.25, seed=4)
    assert len(a) == 50 and len(b) == 150
    rows = torch.cat([a.images, b.images]).flatten(1)
    assert torch.unique(rows, dim=0).shape[0] == 200
    assert torch.equal(blobs.split(0.25, seed=4)[0].images, a.images)


# --- ImageNette: an archive of JPEG folders, decoded and resized once -------------------
COLOURS = {"n01440764": (255, 0, 0), "n02102040": (0, 255, 0), "n02979186": (0, 0, 255)}


def _jpeg(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    from torchvision.io import encode_jpeg

    pixels = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, *size).contiguous()
    return encode_jpeg(pixels, quality=95).numpy().tobytes()


@pytest.fixture
def tiny_imagenette(tmp_path):
    """imagenette2-320.tgz in the real layout: 3 classes of one-colour, non-square JPEGs."""
    import hashlib
    import io
    import tarfile

    root = tmp_path / "data"
    root.mkdir()
    archive = root / "imagenette2-320.tgz"
    with tarfile.open(archive, "w:gz") as tgz:
        for part, count in (("train", 4), ("val", 2)):
            for wnid, colour in reversed(COLOURS.items()):  # labels must not follow archive order
                for i in range(count):
                    blob = _jpeg(colour, (30 + i, 40))  # (H, W): the crop must take the centre
                    info = tarfile.TarInfo(f"imagenette2-320/{part}/{wnid}/{wnid}_{i}.JPEG")
                    info.size = len(blob)
                    tgz.addfile(info, io.BytesIO(blob))
        note = b"path,noisy_labels_1\n"
        info = tarfile.TarInfo("imagenette2-320/noisy_imagenette.csv")
        info.size = len(note)
        tgz.addfile(info, io.BytesIO(note))
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    spec = dataclasses.replace(
        data.get_spec("imagenette"),
        checksums=((archive.name, md5),),
        num_classes=3,
        shape=(3, 16, 16),
        class_names=tuple(COLOURS),
    )
    return root, spec


def test_imagenette_archive_loads_resized_rgb_images_labelled_by_sorted_wnid(tiny_imagenette):
    root, spec = tiny_imagenette
    train = data.load("imagenette", "train", root, spec=spec, allow_download=False)
    test = data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert train.images.shape == (12, 3, 16, 16) and test.images.shape == (6, 3, 16, 16)
    assert train.images.dtype == torch.float32
    assert sorted(train.labels.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    for label in range(3):  # class k is the k-th sorted wnid, whose images are pure colour k
        means = train.images[train.labels == label].mean(dim=(0, 2, 3))
        assert int(means.argmax()) == label and float(means.max()) > 0.9 and float(means.min()) < 0.1


def test_imagenette_is_decoded_once_then_read_from_the_tensor_file(tiny_imagenette, monkeypatch):
    root, spec = tiny_imagenette
    first = data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert (root / "imagenette2-320.tgz.robinterp-16x16.pt").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(data, "_decode_resized", no_decoding)
    again = data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_imagenette_tensor_file_of_another_archive_or_decoder_is_not_used(tiny_imagenette, monkeypatch):
    root, spec = tiny_imagenette
    data.load("imagenette", "test", root, spec=spec, allow_download=False)
    calls = []
    decode = data._decode_resized
    monkeypatch.setattr(data, "_decode_resized", lambda *a: calls.append(1) or decode(*a))
    # same file name, but the stored tensors were made from an archive with another checksum
    stored = torch.load(root / "imagenette2-320.tgz.robinterp-16x16.pt", weights_only=True)
    data._save_checked({**stored, "archive_digest": "0" * 32}, root / "imagenette2-320.tgz.robinterp-16x16.pt")
    data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert len(calls) == 18
    # nor one made by other decoding code
    data._save_checked({**stored, "transform": "an older resize"}, root / "imagenette2-320.tgz.robinterp-16x16.pt")
    data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert len(calls) == 36


def test_imagenette_without_the_archive_fails_fast_saying_where_to_get_it(tmp_path, monkeypatch):
    def unreachable(spec, root):
        raise OSError("no network")

    spec = dataclasses.replace(data.get_spec("imagenette"), downloader=unreachable)
    with pytest.raises(data.DataError) as err:
        data.load("imagenette", "train", tmp_path, spec=spec)
    message = str(err.value)
    assert "missing" in message and "imagenette2-320.tgz" in message and "\n" not in message
    assert "https://s3.amazonaws.com/fast-ai-imageclas/imagenette2-320.tgz" in message
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_imagenette_archive_with_a_wrong_checksum_is_refused(tiny_imagenette):
    root, spec = tiny_imagenette
    archive = root / "imagenette2-320.tgz"
    archive.write_bytes(archive.read_bytes()[:-10])
    with pytest.raises(data.DataError, match="wrong md5"):
        data.load("imagenette", "train", root, spec=spec, allow_download=False)


@pytest.fixture
def tiny_pathmnist(tmp_path):
    """pathmnist.npz in MedMNIST's layout: (N, 28, 28, 3) uint8 images, (N, 1) labels per split."""
    import dataclasses
    import hashlib

    import numpy as np

    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 12), ("val", 3), ("test", 5)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 9).reshape(n, 1).astype(np.uint8)
    np.savez(root / "pathmnist.npz", **arrays)
    md5 = hashlib.md5((root / "pathmnist.npz").read_bytes()).hexdigest()
    spec = dataclasses.replace(data.get_spec("pathmnist"), checksums=(("pathmnist.npz", md5),))
    return root, spec, arrays


def test_pathmnist_npz_loads_channels_first_with_flat_labels(tiny_pathmnist):
    root, spec, arrays = tiny_pathmnist
    test = data.load("pathmnist", "test", root, spec=spec, allow_download=False)
    assert test.images.shape == (5, 3, 28, 28) and test.labels.tolist() == [0, 1, 2, 3, 4]
    expected = torch.from_numpy(arrays["test_images"]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(test.images, expected)
    assert len(data.load("pathmnist", "train", root, spec=spec, allow_download=False)) == 12


def test_pathmnist_without_its_file_fails_fast_saying_where_to_get_it(tmp_path):
    with pytest.raises(data.DataError, match="pathmnist: missing .*pathmnist.npz; no offline source exists"):
        data.load("pathmnist", "test", tmp_path, allow_download=False)


@pytest.mark.parametrize("damage", ["flipped byte", "no digest", "pickled code", "link to another"])
def test_a_damaged_or_foreign_imagenette_tensor_file_is_decoded_again_never_trusted(
    tiny_imagenette, monkeypatch, damage
):
    """The decoded tensor file had no checksum and was read by torch.load without weights_only."""
    import pickle

    root, spec = tiny_imagenette
    first = data.load("imagenette", "test", root, spec=spec, allow_download=False)
    stored = root / "imagenette2-320.tgz.robinterp-16x16.pt"
    if damage == "flipped byte":
        raw = bytearray(stored.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        stored.write_bytes(bytes(raw))
    elif damage == "no digest":
        (root / (stored.name + ".sha256")).unlink()
    elif damage == "pickled code":  # even with a matching digest, nothing but tensors is loaded

        class Boom:
            def __reduce__(self):
                return (os.system, ("touch " + str(root / "PWNED"),))

        stored.write_bytes(pickle.dumps(Boom(), protocol=2))
        (root / (stored.name + ".sha256")).write_text(data._file_sha256(stored))
    else:
        other = root / "other.pt"
        stored.rename(other)
        stored.symlink_to(other)
    monkeypatch.setattr(data, "_stored_images", data._stored_images.__wrapped__)  # no in-memory copy
    with pytest.warns(UserWarning, match="damaged"):
        again = data.load("imagenette", "test", root, spec=spec, allow_download=False)
    assert torch.equal(first.images, again.images) and not (root / "PWNED").exists()
    assert (
        not stored.is_symlink() and data._file_sha256(stored) == (root / (stored.name + ".sha256")).read_text().strip()
    )
