"""The built book in a real browser: headless Chromium loads every page and reports what a reader
would trip over, with a screenshot of each page.

    python -m robinterp.check_html [_build/html]      # make check-html

A page fails on a console error or an uncaught exception, an image that does not load, a figure
without alt text (Sphinx's default alt is the file's own path: that counts as none), a local
link to a missing file or anchor, a table wider than the text column (or cut by a scrolling box
around it), math left as raw TeX (every formula must be typeset, from the book's own copy of
MathJax: readers may be offline), or prose and tables showing what a reader should never see:
TeX outside math, a myst role such as an unresolved glue, RST's double backquotes, a NaN cell.
Screenshots go to ``_build/screenshots/<page>.png``. Chromium comes from the Debian package
``chromium`` (``apt-get install chromium``); it is driven over the DevTools protocol.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from robinterp import RobinterpError

# what the page reports about itself once loaded and typeset (run in the page)
PAGE_FACTS = r"""
(async () => {
  // the width of the closest box between a table and the column that scrolls it sideways, if any
  const cutBy = (table, column) => {
    for (let box = table.parentElement; box && box !== column; box = box.parentElement) {
      if (box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== "visible") {
        return box.clientWidth;
      }
    }
    return 0;
  };
  // prose and table text (not code, not typeset math) that shows markup a reader should not see
  const LEAKS = [
    [/\$[^$\n]*\\[A-Za-z]+[^$\n]*\$/, "TeX outside math"],
    [/\{(glue|cite|ref|numref|eq|doc|download)(:[a-z]+)?\}(`|\s|$)/, "a myst role not rendered"],
    [/\|\s*[-\u2013\u2014]{1,3}\s*\|/, "a markdown table not rendered"],
    [/``[^`\s][^`]*``/, "RST double backquotes"],
  ];
  const leaks = (column) => {
    const found = [];
    const walker = document.createTreeWalker(column, NodeFilter.SHOW_TEXT, {
      acceptNode: (n) => n.parentElement.closest("pre, code, script, style, mjx-container, .highlight, .math")
          ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
    });
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const [pattern, what] of LEAKS) {
        const match = node.textContent.match(pattern);
        if (match) found.push(what + ": " + match[0].slice(0, 60));
      }
    }
    for (const cell of column.querySelectorAll("td, th")) {
      if (/^\s*nan\s*$/i.test(cell.textContent)) found.push("NaN in a table: " + (cell.closest("table").innerText || "").trim().split("\n")[0].slice(0, 60));
    }
    return [...new Set(found)];
  };
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const column = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const limit = column.getBoundingClientRect().width;
  const images = [...document.querySelectorAll("article img, main img")];
  const file = (src) => decodeURIComponent(src.split("/").pop());
  return {
    broken_images: images.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute("src")),
    no_alt: images.filter(i => !(i.alt || "").trim() || file(i.src) === file(i.alt)).map(i => i.getAttribute("src")),
    // a table in a box that scrolls sideways is as cut for a reader (and a screenshot) as one that
    // overflows the column: its laid-out width is the larger of its box and its content
    wide_tables: [...column.querySelectorAll("table")]
        .map(t => [t, Math.max(t.getBoundingClientRect().width, t.scrollWidth), cutBy(t, column)])
        .filter(([t, width, cut]) => width > limit + 1 || cut)
        .map(([t, width, cut]) => Math.round(width) + "px > " + Math.round(cut || limit) + "px: "
                  + (t.innerText || "").trim().split("\n")[0].slice(0, 60)),
    raw_text: leaks(column),
    raw_math: [...document.querySelectorAll(".math, span.math, div.math")]
        .filter(m => !m.querySelector("mjx-container")).map(m => (m.textContent || "").slice(0, 60)),
    typeset: document.querySelectorAll("mjx-container").length,
    links: [...document.querySelectorAll("a[href]")].map(a => a.href),
    anchors: [...document.querySelectorAll("[id]")].map(e => e.id),
    height: Math.ceil(document.documentElement.scrollHeight),
  };
})()
"""
WIDTH = 1280


@dataclasses.dataclass
class PageReport:
    page: str
    problems: list[str]
    screenshot: Path | None


class Browser:
    """One headless Chromium, driven over its DevTools websocket (one page at a time)."""

    def __init__(self) -> None:
        import websocket

        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            raise RobinterpError("no Chromium to check the book with: apt-get install chromium")
        self.profile = tempfile.mkdtemp(prefix="robinterp-chromium-")
        self.process = subprocess.Popen(
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                "--no-first-run",
                "--allow-file-access-from-files",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = None
        deadline = time.time() + 60
        while url is None and time.time() < deadline:
            line = self.process.stderr.readline()
            if not line and self.process.poll() is not None:
                break
            if line.startswith("DevTools listening on "):
                url = line.split(" on ", 1)[1].strip()
        if url is None:
            self.close()
            raise RobinterpError("Chromium did not start its DevTools endpoint")
        # no Origin header: Chromium (111 on) refuses DevTools websockets from an origin it was not told to allow
        self.ws = websocket.create_connection(url, timeout=120, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RobinterpError(f"Chromium: {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, event: str, session: str, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while not any(e.get("method") == event and e.get("sessionId") == session for e in self.events):
            if time.time() > deadline:
                raise RobinterpError(f"Chromium: no {event} within {timeout:g} s")
            self.events.append(json.loads(self.ws.recv()))

    def visit(self, url: str) -> tuple[dict[str, Any], list[str], bytes]:
        """(the page's facts, its console errors, a full-page PNG)."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        try:
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=session)
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            self.events.clear()
            self.send("Page.navigate", {"url": url}, session)
            self.wait_for("Page.loadEventFired", session)
            facts = self.send(
                "Runtime.evaluate", {"expression": PAGE_FACTS, "awaitPromise": True, "returnByValue": True}, session
            )["result"]["value"]
            self.send(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": min(facts["height"], 30000), "deviceScaleFactor": 1, "mobile": False},
                session,
            )
            shot = self.send("Page.captureScreenshot", {"format": "png"}, session)["data"]
            errors = []
            for event in self.events:
                if event.get("sessionId") != session:
                    continue
                params = event.get("params", {})
                if event.get("method") == "Runtime.exceptionThrown":
                    details = params.get("exceptionDetails", {})
                    errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
                elif event.get("method") == "Runtime.consoleAPICalled" and params.get("type") == "error":
                    errors.append(
                        " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
                    )
                elif event.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    entry = params["entry"]
                    errors.append(f"{entry.get('text', '')} {entry.get('url', '')}".strip())
            return facts, errors, base64.b64decode(shot)
        finally:
            self.send("Target.closeTarget", {"targetId": target})

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


def pages(html: Path) -> list[Path]:
    """The book's own pages: not Sphinx's search and index pages, nor the redirect at the root."""
    skipped = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(
        p
        for p in html.rglob("*.html")
        if p.name not in skipped
        and not any(part.startswith("_") for part in p.relative_to(html).parts)
        and not p.read_text(errors="replace").lstrip().startswith('<meta http-equiv="Refresh"')
    )


def _link_problems(page: Path, html: Path, links: list[str], anchors_of: dict[Path, set[str]]) -> list[str]:
    problems = []
    for link in links:
        parsed = urlparse(link)
        if parsed.scheme != "file":
            continue
        target = Path(unquote(parsed.path))
        if not target.exists():
            problems.append(f"broken link to {target.relative_to(html) if target.is_relative_to(html) else target}")
        elif (
            parsed.fragment
            and target.suffix == ".html"
            and target in anchors_of
            and unquote(parsed.fragment) not in anchors_of[target]
        ):
            problems.append(f"link to a missing anchor {target.name}#{parsed.fragment}")
    return problems


def check(html: Path, screenshots: Path) -> list[PageReport]:
    """Every page of the book at ``html`` loaded in Chromium; one report per page."""
    html = Path(html).resolve()
    if not (html / "index.html").exists():
        raise RobinterpError(f"no built book at {html}: run make book first")
    screenshots.mkdir(parents=True, exist_ok=True)
    browser = Browser()
    visited: dict[Path, tuple[dict[str, Any], list[str]]] = {}
    try:
        for page in pages(html):
            facts, errors, png = browser.visit(page.as_uri())
            name = page.relative_to(html).with_suffix(".png").as_posix().replace("/", "__")
            (screenshots / name).write_bytes(png)
            visited[page] = (facts, errors)
    finally:
        browser.close()
    anchors_of = {page: set(facts["anchors"]) for page, (facts, _) in visited.items()}
    reports = []
    for page, (facts, errors) in visited.items():
        problems = [f"console: {e[:200]}" for e in errors]
        problems += [f"image does not load: {src}" for src in facts["broken_images"]]
        problems += [f"figure without alt text: {src}" for src in facts["no_alt"]]
        problems += [f"table wider than the page: {t}" for t in facts["wide_tables"]]
        problems += [f"math not typeset: {m!r}" for m in facts["raw_math"]]
        problems += [f"shown raw: {leak}" for leak in facts["raw_text"]]
        problems += _link_problems(page, html, facts["links"], anchors_of)
        name = page.relative_to(html).with_suffix(".png").as_posix().replace("/", "__")
        reports.append(PageReport(page.relative_to(html).as_posix(), problems, screenshots / name))
    return reports


def main(argv: list[str] | None = None) -> int:
    from robinterp.paths import build_root

    args = sys.argv[1:] if argv is None else argv
    html = Path(args[0]) if args else build_root() / "html"
    try:
        reports = check(html, build_root() / "screenshots")
    except RobinterpError as err:
        print(f"check-html: error: {err}", file=sys.stderr)
        return 2
    failed = [r for r in reports if r.problems]
    for report in reports:
        print(f"{'FAIL' if report.problems else 'ok  '} {report.page}")
        for problem in report.problems:
            print(f"       {problem}")
    print(f"{len(reports)} pages, {len(failed)} with problems; screenshots in {build_root() / 'screenshots'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
