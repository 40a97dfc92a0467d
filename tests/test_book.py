"""How a chapter's page shows a table (``robinterp.book``): one header row where pandas' HTML
would give a named index a row of its own, through the kernel's display formatter."""

from __future__ import annotations

import re
from types import SimpleNamespace

import IPython
import pandas as pd
from IPython.core.formatters import DisplayFormatter

from robinterp import book


def header_rows(html: str) -> list[str]:
    """The text of each header row's cells, "|"-joined."""
    head = html.split("<thead>")[1].split("</thead>")[0]
    return ["|".join(re.findall(r"<th[^>]*>(.*?)</th>", row)) for row in head.split("</tr>")[:-1]]


VERDICTS = pd.DataFrame({"verdict": ["reproduced"], "n": [3]}, index=pd.Index(["a claim"], name="claim"))


def test_a_kernel_shows_a_named_index_in_the_header_corner(monkeypatch):
    formatter = DisplayFormatter()
    monkeypatch.setattr(IPython, "get_ipython", lambda: SimpleNamespace(display_formatter=formatter))
    assert len(header_rows(VERDICTS._repr_html_())) == 2, "pandas' own HTML: a row for the index name"
    with pd.option_context("display.max_colwidth", 50):  # set_up_tables sets it for the whole kernel
        book.set_up_tables()
        assert pd.get_option("display.max_colwidth") is None
    html = formatter.format(VERDICTS)[0]["text/html"]
    assert header_rows(html) == ["claim|verdict|n"]
    assert "a claim" in html and "reproduced" in html


def test_tables_whose_header_needs_two_rows_keep_them():
    by_two = VERDICTS.set_index("verdict", append=True)
    two_levels = pd.DataFrame(
        [[1.0, 0.1]], columns=pd.MultiIndex.from_tuples([("alignment", "mean"), ("alignment", "std")])
    ).rename_axis("method")
    named_columns = VERDICTS.rename_axis(columns="attack")
    for table in (by_two, two_levels, named_columns):
        assert book.index_in_corner(table) is table
    assert len(header_rows(book.index_in_corner(two_levels)._repr_html_())) == 3
