"""Progress lines: whole lines on stderr when not in a terminal, nothing on stdout."""

from __future__ import annotations

from robinterp.progress import progress


def test_outside_a_terminal_progress_prints_whole_lines_to_stderr(capsys):
    items = list(progress(range(5), desc="training", interval=0.0))
    captured = capsys.readouterr()
    assert items == [0, 1, 2, 3, 4]
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 6 and "\r" not in captured.err  # one per item, one at the end
    assert lines[-1].startswith("training: 100%") and "5/5" in lines[-1]
