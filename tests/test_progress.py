"""Progress lines: whole lines on stderr when not in a terminal, nothing on stdout."""

from __future__ import annotations

from robinterp.progress import LineProgress, in_jupyter_frontend, progress


def test_outside_a_terminal_progress_prints_whole_lines_to_stderr(capsys):
    items = list(progress(range(5), desc="training", interval=0.0))
    captured = capsys.readouterr()
    assert items == [0, 1, 2, 3, 4]
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 6 and "\r" not in captured.err  # one per item, one at the end
    assert lines[-1].startswith("training: 100%") and "5/5" in lines[-1]


def test_a_widget_bar_only_in_a_kernel_a_jupyter_server_started(monkeypatch):
    """papermill's kernels have no front-end to draw a widget: they keep the lines."""
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not in_jupyter_frontend()
    monkeypatch.setenv("JPY_SESSION_NAME", "/book/chapters/scaat.ipynb")
    assert not in_jupyter_frontend()  # named, but no IPython kernel here
    assert isinstance(progress(range(3)), LineProgress)
