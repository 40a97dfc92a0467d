"""The trained models as data: listed from the chapters' published tables, loaded by label (the
weights checked, nothing trained), one number of the page reproduced with the loaded model, and
exported with a card."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from robinterp import RobinterpError, data, models, train, trained
from robinterp.paths import build_root
from tests.conftest import run_cli

SPEC = train.TrainSpec(model="small_cnn", width=4, train_size=128, epochs=0.25, dataset="mnist", seed=0)


@pytest.fixture
def published():
    """A real tiny model trained through the cache, and the tables a chapter run publishes for it."""
    model, meta = train.trained_model(SPEC)
    results = build_root() / "results" / "default" / "robust_models"
    results.mkdir(parents=True)
    accuracy = meta["metrics"]["test_accuracy"]
    pd.DataFrame(
        [{"method": "PGD-AT", "seed": 0, "trained_by": "standard", "cache_key": meta["key"], "test_accuracy": accuracy}]
    ).to_csv(results / "training.csv", index=False)
    pd.DataFrame(
        [{"method": "PGD-AT", "seed": 0, "attack": "pgd", "norm": "linf", "eps": 0.1, "accuracy": 0.5}]
    ).to_csv(results / "robust_accuracy.csv", index=False)
    return model, meta


def test_a_model_is_listed_loaded_by_its_label_and_reproduces_the_pages_accuracy(published):
    model, meta = published
    listed = trained.listing("default")
    assert listed[["chapter", "label", "seed", "key"]].values.tolist() == [["robust_models", "PGD-AT", 0, meta["key"]]]
    assert listed["epochs"].tolist() == [0.25]
    assert listed["dataset"].tolist() == ["mnist"]  # from the model's spec: the table has no such column
    loaded = trained.load_model("robust_models", "PGD-AT", seed=0)
    for (name, mine), theirs in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(mine.cpu(), theirs), name
    test = data.load("mnist", "test")
    accuracy = float((models.predict(loaded, test.images) == test.labels).float().mean())
    assert accuracy == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-6)  # the page's clean accuracy


def test_an_exported_model_carries_its_weights_and_a_card(published, tmp_path):
    model, meta = published
    folder = trained.export("robust_models", "PGD-AT", tmp_path / "exported")
    weights = load_file(str(folder / "weights.safetensors"))
    assert all(torch.equal(weights[k], v.cpu()) for k, v in model.state_dict().items())
    card = (folder / "MODEL_CARD.md").read_text()
    assert "`standard`" in card and "MNIST, 128 training images" in card and "PGD at 0.1: 50.0%" in card
    assert f"`{meta['key']}`" in card and (folder / "card.json").is_file()


def test_a_model_not_trained_here_is_a_message_saying_which_command_trains_it(published):
    with pytest.raises(RobinterpError, match="its labels: PGD-AT"):
        trained.load_model("robust_models", "standard")
    with pytest.raises(RobinterpError, match="robinterp run scaat --profile default"):
        trained.load_model("scaat", "SCAAT")
    with pytest.raises(RobinterpError, match="unknown chapter"):
        trained.load_model("nope", "x")


def test_the_export_command_writes_the_weights_and_a_card_and_refuses_an_untrained_label(published, tmp_path):
    model, meta = published
    folder = tmp_path / "exported"
    result = run_cli(
        "models", "--profile", "default", "export", "robust_models", "PGD-AT", "--seed", "0", "--to", str(folder)
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", "card.json", "weights.safetensors"]
    weights = load_file(str(folder / "weights.safetensors"))
    assert weights.keys() == model.state_dict().keys()
    assert all(torch.equal(weights[k], v.cpu()) for k, v in model.state_dict().items())
    card = json.loads((folder / "card.json").read_text())
    assert (card["chapter"], card["label"], card["seed"], card["profile"]) == ("robust_models", "PGD-AT", 0, "default")
    config = card["config"]
    assert config["method"] == SPEC.method == "standard"  # what trained the label
    assert {k: config[k] for k in ("model", "width", "train_size", "epochs", "dataset", "seed")} == {
        "model": "small_cnn",
        "width": 4,
        "train_size": 128,
        "epochs": 0.25,
        "dataset": "mnist",
        "seed": 0,
    }  # the config it was trained under
    assert card["key"] == meta["key"]

    # a label the chapter did not train: one line, exit 2, and no folder made
    untrained = tmp_path / "untrained"
    result = run_cli("models", "export", "robust_models", "standard", "--seed", "0", "--to", str(untrained))
    assert result.returncode == 2 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "no model 'standard' at seed 0" in result.stderr
    assert not untrained.exists()
