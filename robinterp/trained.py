"""The book's trained models as data: listed by chapter, label, seed and budget, loaded by label
(``from robinterp.trained import load_model``), exported with a model card.

A chapter's run publishes ``training.csv`` (every model it trained: label, seed, cache key, clean
accuracy); the model itself is the cache entry of that key (weights in safetensors, its config and
provenance in ``meta.json``, every file's sha256 checked on load). So nothing here trains: a model
a chapter has not trained under the profile is an error saying which command trains it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from robinterp import RobinterpError, cache
from robinterp.chapters import CHAPTERS, get_chapter
from robinterp.paths import build_root, cache_root, no_link_below
from robinterp.titles import attack_title, dataset_title, model_title, optimizer_title, params_text

COLUMNS = ("chapter", "label", "seed", "dataset", "method", "epochs", "clean accuracy (%)", "key")


def _training_table(chapter: str, profile: str) -> pd.DataFrame | None:
    path = build_root() / "results" / profile / chapter / "training.csv"
    return pd.read_csv(path) if path.is_file() else None


def _spec_config(meta: dict[str, Any]) -> dict[str, Any]:
    """A model entry's training spec as saved: the spec itself, or a continued model's second
    stage (``robinterp.train.continued``: its first stage is the entry ``init``)."""
    config = meta["config"]
    return config["finetune"] if "finetune" in config else config


def listing(profile: str = "default") -> pd.DataFrame:
    """Every model the chapters trained under ``profile`` (as their published ``training.csv`` say),
    one row per chapter, label, seed and data set: method, epochs, clean accuracy and cache key."""
    rows = []
    for chapter in CHAPTERS:
        table = _training_table(chapter, profile)
        if table is None:
            continue
        for record in table.to_dict("records"):
            dataset = record.get("dataset")
            trained_under = _trained_config(str(record["cache_key"]))
            rows.append(
                {
                    "chapter": chapter,
                    "label": record["method"],
                    "seed": int(record["seed"]),
                    # a chapter on one data set does not tabulate it: its model's spec says it
                    "dataset": dataset if isinstance(dataset, str) else trained_under.get("dataset", ""),
                    "method": record.get("trained_by", ""),
                    "epochs": float(trained_under.get("epochs", math.nan)),
                    "clean accuracy (%)": 100 * float(record["test_accuracy"]),
                    "key": str(record["cache_key"]),
                }
            )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _trained_config(key: str) -> dict:
    """The training spec of the cached model ``key``, as its entry records it; empty where the entry
    is not in this cache (another machine trained it)."""
    path = cache_root() / "models" / key / cache.META
    try:
        config = _spec_config(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return config if isinstance(config, dict) else {}


def _row(chapter: str, label: str, seed: int, profile: str, dataset: str | None) -> pd.Series:
    get_chapter(chapter)  # an unknown chapter: the runner's one-line error
    table = listing(profile)
    mine = table[table.chapter == chapter]
    if mine.empty:
        raise RobinterpError(
            f"no models of {chapter} under {profile}: `robinterp run {chapter} --profile {profile}` trains them"
        )
    found = mine[(mine.label == label) & (mine.seed == seed)]
    if dataset is not None:
        found = found[found.dataset == dataset]
    if found.empty:
        labels = ", ".join(dict.fromkeys(mine.label))
        raise RobinterpError(f"{chapter} under {profile} has no model {label!r} at seed {seed}; its labels: {labels}")
    if len(found) > 1:
        raise RobinterpError(
            f"{chapter} trained {label!r} on several data sets ({', '.join(found.dataset)}); name one with dataset="
        )
    return found.iloc[0]


def load_model(
    chapter: str, label: str, seed: int = 0, profile: str = "default", dataset: str | None = None
) -> torch.nn.Module:
    """The model ``chapter`` trained as ``label`` on ``seed`` under ``profile``, from the cache, in
    eval mode on the CPU: ``load_model("robust_models", "PGD-AT", seed=0)``. Its files are checked
    against their recorded sha256; nothing is trained."""
    model, _ = _load(_row(chapter, label, seed, profile, dataset))
    return model


def _load(row: pd.Series) -> tuple[torch.nn.Module, dict[str, Any]]:
    from robinterp import train

    folder, meta = cache.verified_entry("models", str(row["key"]))
    config = _spec_config(meta)
    spec = train.TrainSpec(
        **{**config, "method_params": tuple(tuple(p) for p in config["method_params"]), "device": "cpu"}
    )
    model = train.build_model(spec)
    model.load_state_dict(load_file(str(folder / "weights.safetensors")))
    return model.eval(), meta


def model_card(row: pd.Series, meta: dict[str, Any], profile: str) -> str:
    """A markdown card for one model: what trained it, on what, how accurate and robust it is (from
    the chapter's published tables), and where it came from."""
    config = _spec_config(meta)
    params = params_text(", ".join(f"{k}={v}" for k, v in config["method_params"])) or "the method's defaults"
    lines = [
        f"# {row['label']} (seed {row['seed']}), from the {row['chapter']} chapter of robinterp",
        "",
        f"- **Method**: `{config['method']}` with {params}",
        f"- **Data**: {dataset_title(config['dataset'])}, "
        + (f"{config['train_size']} training images" if config["train_size"] else "all training images"),
        f"- **Network**: {model_title(config['model'])} (`{config['model']}`)"
        + (f", first-layer width {config['width']}" if config["width"] else ""),
        f"- **Training**: {config['epochs']:g} epoch(s), {optimizer_title(config['optimizer'])} at lr {config['lr']:g}, batch "
        f"{config['batch_size']}, seed {config['seed']}, {config['device']}, {config['precision']}"
        + ("; continued from the cache entry " + meta["config"]["init"] if "init" in meta["config"] else ""),
        f"- **Clean accuracy**: {row['clean accuracy (%)']:.2f}% on the test set",
    ]
    robust = _robust_accuracy(row, profile)
    if robust:
        lines.append(f"- **Accuracy under attack** (the chapter's evaluation subset): {robust}")
    lines += [
        f"- **Trained by**: robinterp {meta.get('versions', {}).get('robinterp', '?')} at commit "
        f"{meta.get('commit', '?')}, {meta.get('utc', '?')}, on {meta.get('hardware', '?')}",
        f"- **Libraries**: {', '.join(f'{k} {v}' for k, v in meta.get('versions', {}).items())}",
        f"- **Cache key**: `{row['key']}`",
        "",
        "Load it with `robinterp.trained.load_model` or build the network of `card.json`'s spec and load",
        "`weights.safetensors` into it. `card.json` holds the full training spec and provenance.",
    ]
    return "\n".join(lines) + "\n"


def _robust_accuracy(row: pd.Series, profile: str) -> str:
    path = build_root() / "results" / profile / str(row["chapter"]) / "robust_accuracy.csv"
    if not path.is_file():
        return ""
    table = pd.read_csv(path)
    mine = table[(table["method"] == row["label"]) & (table["seed"] == row["seed"])]
    if "dataset" in table.columns and row["dataset"]:
        mine = mine[mine["dataset"] == row["dataset"]]
    if mine.empty or not {"attack", "eps", "accuracy"} <= set(mine.columns):
        return ""
    mine = mine[mine["eps"] > 0]
    return "; ".join(f"{attack_title(str(r.attack))} at {r.eps:g}: {100 * r.accuracy:.1f}%" for r in mine.itertuples())


def export(
    chapter: str,
    label: str,
    to: Path,
    seed: int = 0,
    profile: str = "default",
    dataset: str | None = None,
) -> Path:
    """Write the model's weights (``weights.safetensors``), its card (``MODEL_CARD.md``) and its
    spec and provenance (``card.json``) into the folder ``to`` (made if missing; files of the same
    names are replaced, nothing else is touched). Returns the folder."""
    row = _row(chapter, label, seed, profile, dataset)
    model, meta = _load(row)
    to = Path(to)
    no_link_below(to.parent, to)
    to.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(to / "weights.safetensors"))
    (to / "MODEL_CARD.md").write_text(model_card(row, meta, profile))
    card = {"chapter": chapter, "label": label, "seed": seed, "profile": profile, **meta}
    (to / "card.json").write_text(json.dumps(card, indent=2, default=str))
    return to
