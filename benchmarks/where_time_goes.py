"""Where a cold book's compute went, read from its cache: every entry records the wall time it
took to compute (``meta.json``), so a cache filled by one cold ``make book`` is a profile of it.

    .venv/bin/python benchmarks/where_time_goes.py [CACHE] [--out benchmarks/results/where_time_goes.md]

Models are grouped by training method (ROAR's retrainings apart), measures by name (the per-model
entries of ``robinterp.measures``); a ROAR measure's time includes the retrainings it ran, so
ROAR is shown once, as its retrainings plus the rest of the measure. Entries written by another
commit than the most common one are left out (a cache that was warm when the book ran).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def entries(cache: Path) -> list[dict]:
    found = []
    for meta in cache.glob("*/*/meta.json"):
        try:
            found.append(json.loads(meta.read_text()))
        except (OSError, ValueError):
            continue
    return found


def group_of(meta: dict) -> tuple[str, str]:
    """(kind, name) of a cache entry: a model by its method, a ROAR retraining, a measure by name,
    or another table by its chapter and table."""
    config = meta.get("config") or {}
    if meta.get("kind") == "models":
        if "roar" in config:
            return "training", "ROAR retrainings"
        fields = config.get("finetune") or config.get("fields") or config  # a continued model: its fine-tuning
        return "training", str(fields.get("method", "?")) + (" (continued)" if "finetune" in config else "")
    if "measure" in config:
        settings = config.get("settings") or {}
        attacks = [settings["attack"]] if isinstance(settings.get("attack"), dict) else settings.get("attacks")
        if isinstance(attacks, list):  # robust accuracy: by the attacks it runs
            return "measures", "attack: " + " + ".join(str(a.get("name", "?")) for a in attacks)
        return "measures", str(config["measure"])
    return "tables", f"{config.get('chapter', '?')}: {config.get('table', config.get('group', '?'))}"


def profile(metas: list[dict]) -> dict[tuple[str, str], tuple[float, int]]:
    commit = Counter(m.get("commit") for m in metas).most_common(1)[0][0] if metas else None
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    count: Counter = Counter()
    retrain = sum(
        m["wall_seconds"] for m in metas if m.get("commit") == commit and group_of(m)[1] == "ROAR retrainings"
    )
    for meta in metas:
        if meta.get("commit") != commit:
            continue
        group = group_of(meta)
        seconds[group] += float(meta.get("wall_seconds", 0.0))
        count[group] += 1
    if ("measures", "roar") in seconds:  # its time holds the retrainings, shown on their own
        seconds["measures", "roar"] = max(seconds["measures", "roar"] - retrain, 0.0)
    return {group: (seconds[group], count[group]) for group in seconds}


def table(found: dict[tuple[str, str], tuple[float, int]]) -> str:
    total = sum(s for s, _ in found.values()) or 1.0
    lines = ["| kind | what | entries | minutes | share |", "|---|---|---|---|---|"]
    for (kind, name), (seconds, n) in sorted(found.items(), key=lambda item: -item[1][0]):
        lines.append(f"| {kind} | {name} | {n} | {seconds / 60:.1f} | {seconds / total:.0%} |")
    by_kind: dict[str, float] = defaultdict(float)
    for (kind, _), (seconds, _) in found.items():
        by_kind[kind] += seconds
    summary = ", ".join(f"{kind} {s / 60:.1f} min ({s / total:.0%})" for kind, s in sorted(by_kind.items()))
    return f"Cached compute {total / 60:.1f} min: {summary}.\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", nargs="?", type=Path, default=REPO / ".cache")
    parser.add_argument("--out", type=Path, help="write the table there (markdown) as well")
    args = parser.parse_args()
    metas = entries(args.cache)
    if not metas:
        raise SystemExit(f"no cache entries under {args.cache}")
    text = table(profile(metas))
    print(text)
    if args.out:
        commit = Counter(m.get("commit") for m in metas).most_common(1)[0][0]
        hardware = Counter(m.get("hardware") for m in metas).most_common(1)[0][0]
        header = (
            "Where a cold `make book` (default profile) spent its cached compute, from the wall time "
            "each cache entry recorded (`benchmarks/where_time_goes.py`). Timings outside the "
            "cache (page building, kernels, verdicts, figures, the cost and map-cost timings) are "
            "not in it.\n\n"
        )
        args.out.write_text(header + text + f"\nCommit {commit}, {hardware}.\n")


if __name__ == "__main__":
    main()
