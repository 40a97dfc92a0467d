"""Editing chapters in JupyterLab: outputs never reach git, and a chapter run cell by cell on a
Lab server's kernel executes and gives the numbers papermill gives, from the same cache."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import nbformat
import pandas as pd
import pytest

from robinterp import chapters, runner
from robinterp.paths import build_root
from tests.conftest import REPO


def git(cwd, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.mark.slow
def test_a_chapter_saved_with_outputs_reaches_git_without_them(tmp_path):
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(REPO), str(clone))
    for name in ("Makefile", ".gitattributes"):  # this checkout's, committed or not
        (clone / name).write_text((REPO / name).read_text())
    git(
        clone,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "--quiet",
        "--allow-empty",
        "-am",
        "as checked out",
    )
    subprocess.run(
        ["make", "--no-print-directory", "git-filter", f"PY={sys.executable}"],
        cwd=clone,
        check=True,
        capture_output=True,
    )
    path = clone / "book" / "chapters" / "robust_models.ipynb"
    notebook = nbformat.read(path, as_version=4)
    ids_before = [cell.id for cell in notebook.cells]
    code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    code.execution_count = 7
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="what Lab saved\n")]
    nbformat.write(notebook, path)  # as JupyterLab saves it
    assert git(clone, "diff") == ""  # the filter strips outputs and counts: no change to see
    git(clone, "add", str(path))
    assert git(clone, "diff", "--cached") == "" and git(clone, "status", "--porcelain") == ""  # none to commit
    assert "what Lab saved" in path.read_text()  # the working copy keeps them for the reader
    # an edit to a cell's source is kept, its outputs are not; cell ids stay
    code.source += "\n# an edit"
    nbformat.write(notebook, path)
    git(clone, "add", str(path))
    staged = git(clone, "show", f":{path.relative_to(clone).as_posix()}")
    assert "# an edit" in staged and "what Lab saved" not in staged and '"execution_count": null' in staged
    assert [cell.id for cell in nbformat.reads(staged, as_version=4).cells] == ids_before


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LabServer:
    """``jupyter lab`` headless on a free port, as ``make lab`` starts it, and its REST API."""

    def __init__(self, env: dict[str, str]):
        self.port, self.token = free_port(), uuid.uuid4().hex
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                f"--port={self.port}",
                "--ip=127.0.0.1",
                f"--IdentityProvider.token={self.token}",
                "--notebook-dir=book/chapters",
                "--ServerApp.allow_root=True",
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 60
        while True:
            try:
                self.request("GET", "/api/status")
                return
            except OSError:
                if time.time() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError("the Lab server did not start") from None
                time.sleep(0.5)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else {}

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def run_cells(server: LabServer, kernel_id: str, sources: list[str], timeout: float = 600) -> list[list[dict]]:
    """Each source executed in turn on the kernel over its websocket; the outputs of each. Raises
    on the first cell that fails."""
    import websocket

    ws = websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/api/kernels/{kernel_id}/channels?token={server.token}", timeout=timeout
    )
    outputs = []
    try:
        for source in sources:
            msg_id = uuid.uuid4().hex
            ws.send(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "username": "test",
                            "session": uuid.uuid4().hex,
                            "msg_type": "execute_request",
                            "version": "5.3",
                            "date": "",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "buffers": [],
                        "content": {
                            "code": source,
                            "silent": False,
                            "store_history": True,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            produced, replied, idle = [], None, False
            while replied is None or not idle:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = message["msg_type"]
                if kind == "execute_reply":
                    replied = message["content"]
                elif kind == "status" and message["content"]["execution_state"] == "idle":
                    idle = True
                elif kind in ("stream", "display_data", "execute_result", "error"):
                    produced.append(message["content"])
            if replied["status"] != "ok":
                raise AssertionError(
                    f"cell failed in Lab: {replied.get('ename')}: {replied.get('evalue')}\n{source[:300]}"
                )
            outputs.append(produced)
    finally:
        ws.close()
    return outputs


@pytest.mark.slow
def test_a_chapter_runs_cell_by_cell_in_lab_with_papermills_numbers(tmp_path, monkeypatch):
    """robust_models under smoke on a Lab server's kernel, cell by cell, with the smoke settings
    typed into a cell after the parameters as a reader would (it trains, with widget progress
    bars), then through the runner (papermill), which takes the Lab run's models and tables from
    the cache and saves equal tables."""
    import os

    config, label = chapters.resolve_config("robust_models", "smoke")

    notebook = nbformat.read(REPO / chapters.CHAPTERS["robust_models"].notebook, as_version=4)
    sources = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        sources.append(cell.source)
        if "parameters" in cell.metadata.get("tags", []):
            sources.append("\n".join(f"{name} = {value!r}" for name, value in config.to_parameters().items()))
    server = LabServer({**os.environ})
    try:
        contents = server.request("GET", "/api/contents/robust_models.ipynb")
        assert contents["type"] == "notebook"
        session = server.request(
            "POST", "/api/sessions", {"path": "robust_models.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        )
        outputs = run_cells(server, session["kernel"]["id"], sources)
    finally:
        server.stop()
    assert server.process.poll() is not None, "the Lab server was left running"
    runner.run("robust_models", "smoke")
    by_papermill = pd.read_csv(build_root() / "results" / label / "robust_models" / "robust_accuracy.csv")
    trained = pd.read_csv(build_root() / "results" / label / "robust_models" / "training.csv")
    assert trained["from_cache"].all(), "papermill retrained what Lab had trained: not the same cache"
    adhoc = [p for p in (build_root() / "results").iterdir() if p.name.startswith("adhoc-")]
    assert len(adhoc) == 1, "the Lab run's tables did not go to their own folder"
    by_lab = pd.read_csv(adhoc[0] / "robust_models" / "robust_accuracy.csv")
    pd.testing.assert_frame_equal(by_lab, by_papermill)
    flat = [output for cell in outputs for output in cell]
    assert any("application/vnd.jupyter.widget-view+json" in output.get("data", {}) for output in flat), (
        "no widget progress bar in Lab"
    )
    assert not any("IProgress not found" in output.get("text", "") for output in flat)


# what a chapter's Markdown cells show once JupyterLab has rendered them (run in the page)
RENDERED_MARKDOWN = r"""
(() => {
  const cells = [...document.querySelectorAll(".jp-MarkdownCell")];
  const myst = cells.map(c => c.querySelector(".myst")).filter(Boolean);
  // textContent, not innerText: Lab lays out only the cells in view, and innerText of the rest is empty
  const text = myst.map(m => m.textContent).join("\n");
  return {
    cells: cells.length,
    myst: myst.length,
    katex: document.querySelectorAll(".jp-MarkdownCell .myst .katex").length,
    admonitions: document.querySelectorAll(".jp-MarkdownCell .myst aside.myst-admonition").length,
    raw_roles: text.match(/\{(cite|glue|ref|doc)(:[a-z]+)?\}/g) || [],
    citations: [...document.querySelectorAll(".jp-MarkdownCell .myst span[title]")]
        .filter(s => /citation/i.test(s.title)).map(s => s.textContent.trim()),
  };
})()
"""


@pytest.mark.slow
def test_lab_renders_a_chapters_markdown_as_myst(tmp_path):
    """``make lab``'s JupyterLab has jupyterlab-myst: a chapter's Markdown cells render as MyST in a
    real browser (citations as citations, math typeset, admonitions as boxes, no role left as raw
    text), not as plain Markdown with ``{cite}`` showing. jupyterlab-myst 2.7 resolves neither citations against the
    bibliography (the key shows, marked "Citation Not Found") nor myst-nb's glue (the key shows):
    the built page has both."""
    import os

    from robinterp import check_html
    from tests.conftest import need_chromium

    need_chromium()
    notebook = nbformat.read(REPO / chapters.CHAPTERS["scaat"].notebook, as_version=4)  # it has an admonition
    markdown = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    # a workspace of its own: Lab would reopen the tabs of the last session in this home folder
    server, browser = LabServer({**os.environ, "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path)}), None
    try:
        browser = check_html.Browser()
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Runtime.enable", session=session)
        browser.send(
            "Page.navigate",
            {"url": f"http://127.0.0.1:{server.port}/lab/tree/scaat.ipynb?reset&token={server.token}"},
            session,
        )
        deadline = time.time() + 120
        while True:
            shown = browser.send("Runtime.evaluate", {"expression": RENDERED_MARKDOWN, "returnByValue": True}, session)
            shown = shown["result"].get("value") or {}
            if shown.get("cells") == shown.get("myst") == len(markdown) or time.time() > deadline:
                break
            time.sleep(1)
    finally:
        if browser is not None:
            browser.close()
        server.stop()
    assert shown.get("cells") == len(markdown), f"the chapter did not open in Lab: {shown}"
    assert shown["myst"] == len(markdown), "Markdown cells rendered without jupyterlab-myst"
    assert shown["raw_roles"] == [] and shown["katex"] > 0, shown
    directives = re.findall(
        r"(?:```|:::)\{(important|note|warning|tip|admonition)\}", "".join(c.source for c in markdown)
    )
    assert shown["admonitions"] == len(directives) > 0, (shown, directives)
    cited = {
        key.strip()
        for cell in markdown
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", cell.source)
        for key in keys.split(",")
    }
    assert cited and cited <= set(shown["citations"]), (cited, shown["citations"])
