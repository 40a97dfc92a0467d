"""The browser check of the built book on two small pages whose problems are known."""

from __future__ import annotations

import pytest

from robinterp import check_html
from tests.conftest import need_chromium


@pytest.fixture(autouse=True)
def chromium() -> None:
    need_chromium()


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body><main style="width: 400px">{body}</main></body></html>"""
CLEAN = """<p>A formula in code is code: <code>$\\lambda$ ``seeds``</code></p>
<pre>{glue:text}`n` is how a chapter writes it</pre>
<table><tr><td>0.5</td><td>None</td></tr></table>"""
LEAKY = """<p>so the selected $\\lambda$ is the largest tried</p>
<p>Of {glue:text}`n_claims` comparisons</p>
<p>among ``seeds``</p>
<table><tr><th>accuracy</th></tr><tr><td>NaN</td></tr></table>
<div style="overflow-x: auto"><table><tr><td style="white-space: nowrap">{wide}</td></tr></table></div>"""


def test_the_check_reports_cut_tables_and_raw_markup_and_passes_a_clean_page(tmp_path):
    html = tmp_path / "html"
    html.mkdir()
    (html / "index.html").write_text(PAGE.format(title="clean", body=CLEAN))
    (html / "leaky.html").write_text(PAGE.format(title="leaky", body=LEAKY.replace("{wide}", "verdict " * 40)))
    reports = {r.page: r.problems for r in check_html.check(html, tmp_path / "shots")}
    assert reports["index.html"] == []
    problems = "\n".join(reports["leaky.html"])
    for expected in (
        "table wider than the page",
        "TeX outside math: $\\lambda$",
        "a myst role not rendered: {glue:text}`",
        "RST double backquotes: ``seeds``",
        "NaN in a table: accuracy",
    ):
        assert expected in problems, problems
    assert len(reports["leaky.html"]) == 5, problems
    assert (tmp_path / "shots" / "leaky.png").stat().st_size > 1000
