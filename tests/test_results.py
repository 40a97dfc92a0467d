"""Results as data: a run's tables carry which run made them, one table of several runs stacks with
the run and config hash as columns, and every table and column the book saves is documented."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from robinterp import RobinterpError, results
from robinterp.paths import build_root
from tests.conftest import run_cli


def publish(label: str, config: str, rows: list[dict]) -> None:
    folder = build_root() / "results" / label / "robust_models"
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "verdicts.csv", index=False)
    (folder / "run.json").write_text(json.dumps({"label": label, "config": config}))


def test_one_table_of_two_runs_stacks_with_the_run_and_its_config(tmp_path):
    publish("default", "aaa", [{"claim": "x", "verdict": "consistent"}])
    publish("config-wide", "bbb", [{"claim": "x", "verdict": "inconclusive"}, {"claim": "y", "verdict": "none"}])
    both = results.combine("verdicts", "robust_models")
    assert list(both.columns[:2]) == ["run", "config"]
    assert both[["run", "config", "verdict"]].values.tolist() == [
        ["config-wide", "bbb", "inconclusive"],
        ["config-wide", "bbb", "none"],
        ["default", "aaa", "consistent"],
    ]
    assert len(results.combine("verdicts", "robust_models", ["default"])) == 1
    out = tmp_path / "both.csv"
    result = run_cli("results", "verdicts", "--chapter", "robust_models", "--to", str(out))
    assert result.returncode == 0 and pd.read_csv(out).equals(both)
    with pytest.raises(RobinterpError, match="runs of robust_models: config-wide, default"):
        results.combine("nope", "robust_models")
    with pytest.raises(RobinterpError, match="robinterp run scaat"):
        results.combine("verdicts", "scaat")


def test_the_documentation_knows_the_books_tables_and_their_columns():
    assert results.undocumented("verdicts", ["claim", "effect", "low", "high", "verdict", "seeds needed"]) == []
    assert results.undocumented("rank_agreement", ["measure", "max-sensitivity", "ROAR acc. 50%"]) == []
    assert results.undocumented("table1", ["20% ours", "80% paper", "paper eps"]) == []
    assert results.undocumented("nothing", ["method", "a new column"]) == ["table nothing", "a new column"]
