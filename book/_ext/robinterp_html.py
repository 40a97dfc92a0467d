"""The book's own Sphinx extension: fixes to the HTML that jupyter-book 1.0.4 writes.

sphinx-thebe and sphinx-togglebutton add their inline scripts twice to every page under
jupyter-book 1.0.4 (an empty book shows it too); the second ``const THEBE_JS_URL`` is a
SyntaxError in every reader's console. Each page keeps the first of identical scripts.

The ``robinterp-judging`` directive writes the section "How claims are judged" from
``robinterp.reports.rules.methods_markdown`` when the book is built: the rule's calibration and
power are simulated then, never typed. The ``robinterp-results`` directive writes the Results page
from the tables the build's chapters published (``robinterp.results.reference_markdown``).

``static/robinterp.css`` shows result tables at JupyterLab's DataFrame size, so that they fit the
text column (``robinterp.check_html`` fails a page whose table does not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"


def _drop_repeated_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for script in scripts:
        # the second copy names no file as None, the first as "": the same script either way
        name = getattr(script, "filename", script) or ""
        key = (str(name), tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    scripts[:] = kept


def _judging_directive() -> Any:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class Judging(SphinxDirective):
        has_content = False

        def run(self) -> list[Any]:
            from robinterp.reports import rules

            container = nodes.container()
            lines = StringList(rules.methods_markdown().splitlines(), source="robinterp.reports.rules")
            self.state.nested_parse(lines, self.content_offset, container)
            return container.children

    return Judging


def _results_directive() -> Any:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective

    class Results(SphinxDirective):
        has_content = False

        def run(self) -> list[Any]:
            from robinterp import results

            folder = Path(self.env.srcdir) / "book" / "results"
            text = (
                results.reference_markdown(folder) if folder.is_dir() else "No chapter published tables in this build."
            )
            container = nodes.container()
            self.state.nested_parse(
                StringList(text.splitlines(), source="robinterp.results"), self.content_offset, container
            )
            return container.children

    return Results


def _add_static(app: Any, config: Any) -> None:
    config.html_static_path.append(str(STATIC))


def setup(app: Any) -> dict[str, Any]:
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    app.connect("config-inited", _add_static)
    app.add_css_file("robinterp.css")
    app.add_directive("robinterp-judging", _judging_directive())
    app.add_directive("robinterp-results", _results_directive())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
