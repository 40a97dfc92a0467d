"""Progress bars that read well both in a terminal and in an executed notebook.

In JupyterLab: tqdm's widget bar. In a terminal: tqdm as usual. Elsewhere (papermill, CI logs) a
carriage-return bar becomes one long smeared output, so we print a whole
tqdm-formatted line at most every ``interval`` seconds and once at the end.
Both go to stderr, as tqdm's do: JupyterLab and the terminal show them, and the
published book drops them (``nb_output_stderr: remove`` in _config.yml), where
the chapter's tables report what the work took instead.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


class LineProgress:
    """A tqdm-like iterator that prints full lines instead of redrawing one."""

    def __init__(self, iterable: Iterable[T], desc: str, total: int | None, interval: float) -> None:
        self.iterable = iterable
        self.desc = desc
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.interval = interval
        self.postfix = ""
        self.n = 0

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def _line(self, elapsed: float) -> str:
        return tqdm.format_meter(
            self.n, self.total, elapsed, ncols=100, prefix=self.desc, postfix=self.postfix or None, ascii=True
        )

    def __iter__(self) -> Iterator[T]:
        start = last = time.perf_counter()
        for item in self.iterable:
            yield item
            self.n += 1
            now = time.perf_counter()
            if now - last >= self.interval:
                print(self._line(now - start), file=sys.stderr, flush=True)
                last = now
        print(self._line(time.perf_counter() - start), file=sys.stderr, flush=True)


def in_jupyter_frontend() -> bool:
    """Whether this runs in a kernel that a Jupyter server (JupyterLab) started for a notebook,
    where a widget bar renders; papermill's kernels, which have no front-end to draw it, are not.
    jupyter_server names the session in the kernel's environment; papermill does not."""
    if not os.environ.get("JPY_SESSION_NAME"):
        return False
    try:
        import ipywidgets  # noqa: F401  (tqdm's widget bar needs it)
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, interval: float = 20.0) -> Iterable[T]:
    """A widget bar in JupyterLab, tqdm in a terminal, periodic full lines anywhere else."""
    if in_jupyter_frontend():
        from tqdm.notebook import tqdm as widget_tqdm

        return widget_tqdm(iterable, desc=desc, total=total)
    if sys.stderr.isatty():
        return tqdm(iterable, desc=desc, total=total, ascii=True, dynamic_ncols=True)
    return LineProgress(iterable, desc, total, interval)
