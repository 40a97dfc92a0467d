"""ROAR: which pixels are removed, with what, in which order, and the cached retraining."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robinterp import data, roar, train


def test_the_top_fraction_is_replaced_by_the_channel_mean_and_the_rest_is_left():
    x = torch.arange(2 * 3 * 2 * 5, dtype=torch.float32).view(2, 3, 2, 5) / 100  # 2 images, 3 channels, 10 pixels
    attribution = torch.zeros_like(x)
    attribution[0, 1, 0, 3] = 5.0  # image 0: pixel 3 first, then pixel 7 (by |.| summed over channels)
    attribution[0, 0, 1, 2] = -4.0
    attribution[1, 2, 1, 4] = 1.0  # image 1: pixel 9 first
    fill = torch.tensor([0.5, 0.25, 0.125])
    out = roar.remove(x, roar.order(attribution), 0.2, fill)  # 20% of 10 pixels: 2
    removed = out != x
    assert removed[0].any(0).flatten().nonzero().flatten().tolist() == [3, 7]
    assert torch.equal(out[0, :, 0, 3], fill) and torch.equal(out[0, :, 1, 2], fill)
    assert removed[1].any(0).sum() == 2 and removed[1, :, 1, 4].all()
    assert torch.equal(out[~removed], x[~removed])


def test_ties_are_broken_by_position_so_the_order_is_deterministic():
    attribution = torch.zeros(1, 1, 2, 3)
    attribution[0, 0, 1, 1] = 1.0
    assert roar.order(attribution).tolist() == [[4, 0, 1, 2, 3, 5]]


def test_the_random_ranking_removes_the_same_count_and_is_seeded():
    x = torch.rand(4, 1, 5, 5)
    fill = torch.tensor([2.0])  # outside [0, 1]: every replaced value is visible
    ranked = roar.order(torch.rand(4, 1, 5, 5))
    shuffled = roar.random_order(x.shape, seed=3)
    for fraction in (0.2, 0.4, 0.6, 0.8):
        by_map = (roar.remove(x, ranked, fraction, fill) == 2.0).flatten(1).sum(1)
        at_random = (roar.remove(x, shuffled, fraction, fill) == 2.0).flatten(1).sum(1)
        assert by_map.tolist() == at_random.tolist() == [roar.removed_count(25, fraction)] * 4
    assert torch.equal(shuffled, roar.random_order(x.shape, seed=3))
    assert not torch.equal(shuffled, roar.random_order(x.shape, seed=4))
    assert roar.removed_count(10, 0.6) == 6 and roar.removed_count(784, 0.2) == 156


def test_the_channel_mean_is_over_the_training_images():
    split = data.Split(
        torch.stack([torch.zeros(2, 3, 3), torch.ones(2, 3, 3)]) * torch.tensor([1.0, 3.0]).view(1, 2, 1, 1),
        torch.tensor([0, 1]),
    )
    assert torch.allclose(roar.channel_mean(split), torch.tensor([0.5, 1.5]))


def test_a_retraining_is_cached_and_ranks_the_training_images_only_when_it_trains(blobs):
    spec = train.TrainSpec(dataset="mnist", model="small_cnn", width=4, epochs=0.25, batch_size=50, seed=0)
    calls = []

    def train_order():
        calls.append(1)
        return roar.random_order(blobs.images.shape, 0)

    fill = roar.channel_mean(blobs)
    first, meta = roar.retrained("source-key", None, 0.4, spec, blobs, train_order, fill)
    again, meta_again = roar.retrained("source-key", None, 0.4, spec, blobs, train_order, fill)
    assert calls == [1] and not meta["from_cache"] and meta_again["from_cache"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values()))
    _, other = roar.retrained("source-key", None, 0.6, spec, blobs, train_order, fill)
    _, other_source = roar.retrained("another-key", None, 0.4, spec, blobs, train_order, fill)
    assert len({meta["key"], other["key"], other_source["key"]}) == 3 and calls == [1, 1, 1]


def test_the_mask_content_is_where_pixels_were_removed_and_nothing_of_the_image():
    x = torch.rand(2, 3, 4, 4)
    ranked = roar.random_order(x.shape, seed=0)
    mask = roar.modified(x, ranked, 0.25, torch.zeros(3), "mask")
    removed = roar.remove(x, ranked, 0.25, torch.full((3,), 5.0)) == 5.0
    assert torch.equal(mask.bool(), removed) and set(mask.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(
        roar.modified(x, ranked, 0.25, torch.zeros(3), "image"), roar.remove(x, ranked, 0.25, torch.zeros(3))
    )
    assert torch.equal(roar.modified(x + 1, ranked, 0.25, torch.zeros(3), "mask"), mask)  # blind to pixel values


def test_the_random_control_draws_apart_for_each_seed_and_stream():
    shape = (50, 1, 4, 4)
    draws = {(seed, stream): roar.random_order(shape, seed, stream) for seed in (0, 1) for stream in roar.STREAMS}
    # seed 0's test draw is not the start of seed 1's training draw (seed + 1 would have made it so)
    rows = [tuple(map(tuple, d.tolist())) for d in draws.values()]
    assert len(set(rows)) == 4 and not torch.equal(draws[0, "test"], draws[1, "train"][:50])


@pytest.mark.parametrize("change", ["ranking", "target", "content", "spec"])
def test_the_retraining_key_follows_ranking_target_content_and_spec(blobs, change):
    spec = train.TrainSpec(dataset="mnist", model="small_cnn", width=4, epochs=0.25, batch_size=50, seed=0)
    base = roar.Ranking("saliency", lambda x, y: x, ("robinterp.explain",), "predicted")
    changed = {
        "ranking": dict(ranking=roar.Ranking("map", lambda x, y: x, (), "predicted")),
        "target": dict(ranking=roar.Ranking("saliency", lambda x, y: x, ("robinterp.explain",), "true")),
        "content": dict(content="mask"),
        "spec": dict(retrain=dataclasses.replace(spec, epochs=0.5)),
    }[change]
    order = lambda: roar.random_order(blobs.images.shape, 0)  # noqa: E731
    args = dict(
        source="k",
        ranking=base,
        fraction=0.4,
        retrain=spec,
        train_split=blobs,
        train_order=order,
        fill=roar.channel_mean(blobs),
    )
    _, first = roar.retrained(**args)
    _, other = roar.retrained(**{**args, **changed})
    assert first["key"] != other["key"]
