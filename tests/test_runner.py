"""The papermill runner and the CLI: failures name chapter, config and cell; nothing stale is published."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from robinterp import RobinterpError, chapters, notebooks, runner
from robinterp.config import Config, ConfigError, param
from robinterp.paths import build_root
from tests.conftest import REPO, run_cli


@dataclasses.dataclass(frozen=True)
class ToyConfig(Config):
    divisor: int = param(1)
    """What the notebook divides by; 0 makes it fail."""


def toy_plan(cfg):
    from robinterp.experiments.common import Plan

    return Plan({}, ())


def toy_notebook(path, tagged=True):
    params = nbformat.v4.new_code_cell('divisor = 1\nprofile = "default"')
    if tagged:
        params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Toy"),
            params,
            nbformat.v4.new_code_cell("result = 10 / divisor\nprint(result)"),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def toy_chapter(tmp_path, monkeypatch):
    path = toy_notebook(tmp_path / "toy.ipynb")
    monkeypatch.setitem(chapters.CHAPTERS, "toy", chapters.Chapter("toy", str(path), ToyConfig, toy_plan))
    return path


def test_a_notebook_without_parameters_cell_is_refused_before_running(tmp_path, monkeypatch):
    path = toy_notebook(tmp_path / "untagged.ipynb", tagged=False)
    monkeypatch.setitem(chapters.CHAPTERS, "toy", chapters.Chapter("toy", str(path), ToyConfig, toy_plan))
    with pytest.raises(ConfigError, match="no cell tagged 'parameters'"):
        notebooks.execute("toy", ToyConfig(), "smoke", tmp_path / "out.ipynb")
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.slow
def test_a_failing_chapter_names_chapter_config_and_cell_and_leaves_no_output(toy_chapter, tmp_path, capsys):
    out = tmp_path / "out" / "toy.ipynb"
    notebooks.execute("toy", ToyConfig(divisor=2), "good", out, echo=True)
    executed = json.loads(out.read_text())
    assert "5.0" in "".join(executed["cells"][-1]["outputs"][0]["text"])
    echoed = capsys.readouterr().out  # what the notebook printed, without papermill's cell log
    assert "5.0" in echoed and "Executing Cell" not in echoed
    with pytest.raises(notebooks.ChapterFailed) as err:
        notebooks.execute("toy", ToyConfig(divisor=0), "bad", out)
    message = str(err.value)
    assert "chapter toy" in message and "'bad'" in message and "cell" in message
    assert "ZeroDivisionError" in message
    assert not out.exists(), "the stale executed copy survived a failed run"
    assert list(out.parent.iterdir()) == [], "a temporary notebook was left behind"


@pytest.mark.slow
def test_the_book_publishes_a_failure_page_not_stale_output(tmp_path, monkeypatch):
    failing = toy_notebook(tmp_path / "toy.ipynb")
    # every chapter in _toc.yml fails, so the real book's table of contents still resolves (the
    # one registry dict, which the runner, the notebooks and the site share, changed in place)
    for name in list(chapters.CHAPTERS):
        monkeypatch.setitem(chapters.CHAPTERS, name, chapters.Chapter(name, str(failing), ToyConfig, toy_plan))
    stale = build_root() / "executed" / "smoke" / "robust_models.ipynb"
    stale.parent.mkdir(parents=True)
    stale.write_text("STALE OUTPUT")
    monkeypatch.setattr(
        chapters,
        "resolve_config",
        lambda chapter, profile=None, config_file=None, settings=None: (ToyConfig(divisor=0), profile),
    )
    with pytest.raises(notebooks.ChapterFailed, match=f"{len(chapters.CHAPTERS)} chapter"):
        runner.book("smoke")
    for name in chapters.CHAPTERS:
        page = (build_root() / "html" / "book" / "chapters" / f"{name}.html").read_text()
        assert "not executed" in page and "ZeroDivisionError" in page and "STALE" not in page
    assert not stale.exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["run", "nope", "--profile", "smoke"], "unknown chapter 'nope'"),
        (["run", "robust_models", "--profile", "fast"], "unknown profile 'fast'"),
        (["data", "fetch", "imagenet"], "unknown data set 'imagenet'"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(args, needle):
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and needle in result.stderr


@pytest.mark.parametrize(
    "chapter,text,needle",
    [
        ("robust_models", "robust_models:\n  epsilons: [0.1, -1]\n", "epsilons = -1.0 is out of range"),
        (
            "saliency_guided_training",
            "saliency_guided_training:\n  methods:\n    ASGT: {method: asgt, k: 1.2}\n",
            "ASGTParams.k = 1.2 is out of range",
        ),
        ("saliency_guided_training", "saliency_guided_training:\n  epochs: 0\n", "epochs = 0.0 is out of range"),
        (
            "saliency_guided_training",
            "saliency_guided_training:\n  methods:\n    SGT: {method: sgt, ranking: biggest}\n",
            "ranking = 'biggest'",
        ),
        ("scaat", "scaat:\n  methods:\n    ST: {method: standard}\n", "methods must list a SCAAT entry"),
        ("robust_models", "robust_models:\n  eval_size: lots\n", "eval_size must be an integer"),
        ("robust_models", "robust_models:\n  attack: 3\n", "did you mean 'attacks'"),
        (
            "robust_models",
            "robust_models:\n  attacks:\n    PGD: {attack: pgd, stepz: 3}\n",
            "attack 'pgd' has no option 'stepz'",
        ),
        ("robust_models", "robust_models:\n  attacks:\n    PGD: {attack: pgd, steps: -1}\n", "steps"),
        ("robust_models", "robust_models:\n  attacks:\n    PGD: {attack: cw}\n", "unknown attack 'cw'"),
    ],
)
def test_cli_bad_config_file_is_one_line_exit_2_and_writes_nothing(tmp_path, chapter, text, needle):
    from robinterp.paths import cache_root

    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    result = run_cli("run", chapter, "--config", str(bad))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and needle in result.stderr, result.stderr
    assert not build_root().exists() and not cache_root().exists()


@pytest.mark.slow
@pytest.mark.longest
def test_the_whole_book_builds_under_smoke_and_every_number_in_its_prose_is_glued(shared_smoke_cache, capsys):
    """Real data, real training and attacks, the real notebooks, jupyter-book with warnings as errors."""
    import re

    index = runner.book("smoke")
    assert index.exists()
    for chapter in chapters.CHAPTERS:
        nb = json.loads((build_root() / "executed" / "smoke" / f"{chapter}.ipynb").read_text())
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        glued = {o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})}
        prose = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
        used = {m.split(":")[0] for m in re.findall(r"\{glue:text\}`([^`]+)`", prose)}
        assert used, f"{chapter}: the prose quotes no measured number"
        assert used <= glued, f"{chapter}: prose quotes numbers the run did not glue: {sorted(used - glued)}"
        assert sum("image/png" in o.get("data", {}) for o in outputs) >= 2
        results = build_root() / "results" / "smoke" / chapter
        assert {"training.csv", "robust_accuracy.csv", "verdicts.csv"} <= {p.name for p in results.iterdir()}
        page = (build_root() / "html" / "book" / "chapters" / f"{chapter}.html").read_text()
        assert "not executed" not in page and "np.float64" not in page
        # every table it saved is documented on the Results page and linked from its own for download
        from robinterp import results as results_data
        from robinterp import titles as titles_module

        for table in results.glob("*.csv"):
            assert not results_data.undocumented(table.stem, list(pd.read_csv(table, nrows=0).columns)), table
        assert "verdicts.csv" in page and "_downloads" in page
        # every verdict row names its data set by title (and, read alone, its models: SCAAT's name SCAAT)
        verdicts = pd.read_csv(results / "verdicts.csv")
        titles = set(titles_module.DATASET_TITLES.values())
        if chapter == "synthesis":  # the scoreboard: its claims not testable here have none
            verdicts = verdicts[verdicts.verdict != "not testable here"]
        assert set(verdicts["data set"]) <= titles, (chapter, set(verdicts["data set"]))
        if chapter == "scaat":
            assert verdicts["claim"].str.startswith("SCAAT: ").all()
        assert re.search(r"<th[^>]*>data set</th>", page), f"{chapter}: its verdicts on the page name no data set"
    # each paper chapter's page opens with its reproduction summary, counted from the verdicts it saved,
    # as the synthesis's scoreboard counts them; every claim not testable here with its reason
    from robinterp.reports import scoreboard, summary

    board = pd.read_csv(build_root() / "results" / "smoke" / "synthesis" / "claims.csv")
    for paper in scoreboard.PAPERS:
        nb = json.loads((build_root() / "executed" / "smoke" / f"{paper.chapter}.ipynb").read_text())
        shown = "".join(  # the summary as glued (markdown), and as the page renders it
            "".join(o["data"]["application/papermill.record/text/markdown"])
            for c in nb["cells"]
            for o in c.get("outputs", [])
            if o.get("metadata", {}).get("scrapbook", {}).get("name") == "reproduction_summary"
        )
        tested = int(re.search(r"\*\*Claims tested here: (\d+)\*\*", shown).group(1))
        page = (build_root() / "html" / "book" / "chapters" / f"{paper.chapter}.html").read_text()
        assert f"Claims tested here: {tested}</strong>" in page, paper.chapter
        verdicts = pd.read_csv(build_root() / "results" / "smoke" / paper.chapter / "verdicts.csv")
        on_board = board[(board.paper == paper.paper) & ~board.verdict.isin([scoreboard.UNTESTABLE])]
        assert tested == len(summary.claims(paper.chapter, verdicts)) == len(on_board), paper.chapter
        for line in shown.splitlines():
            if line.startswith("- ") and "): " in line:
                assert line.split("): ", 1)[1].strip(" ."), line  # a reason
    # a new user's path from the built book: a page links its CSV, the Results page says what its columns
    # mean, the page's PGD-AT model loads by its label and gives the page's clean accuracy again, and
    # it exports with its card
    from robinterp import data, train, trained

    html = build_root() / "html" / "book"
    page = (html / "chapters" / "robust_models.html").read_text()
    link = re.search(r'href="(\.\./\.\./_downloads/[^"]+/training\.csv)"', page).group(1)
    table = pd.read_csv((html / "chapters" / link).resolve())
    assert "clean accuracy on the test set, a fraction" in (html / "results.html").read_text()
    recorded = float(table[(table.method == "PGD-AT") & (table.seed == 0)]["test_accuracy"].iloc[0])
    model = trained.load_model("robust_models", "PGD-AT", seed=0, profile="smoke")
    card = json.loads(
        (
            trained.export("robust_models", "PGD-AT", build_root() / "exported", profile="smoke") / "card.json"
        ).read_text()
    )
    spec = card["config"]
    test = data.load(spec["dataset"], "test").subset(spec["accuracy_size"], train.ACCURACY_SUBSET_SEED)
    assert train.accuracy(model, test) == pytest.approx(recorded, abs=1e-6)
    # ... and as README shows it, in a notebook of the user's own (a kernel of the book's environment)
    from nbclient import NotebookClient

    own = nbformat.v4.new_notebook()
    own.cells = [
        nbformat.v4.new_code_cell(
            "from robinterp import data, train\n"
            "from robinterp.trained import load_model\n"
            'model = load_model("robust_models", "PGD-AT", seed=0, profile="smoke")\n'
            f"test = data.load({spec['dataset']!r}, 'test').subset({spec['accuracy_size']!r}, train.ACCURACY_SUBSET_SEED)\n"
            "print(repr(train.accuracy(model, test)))"
        )
    ]
    NotebookClient(own, timeout=300, kernel_name="python3").execute()
    printed = [o["text"] for o in own.cells[0].outputs if o.get("name") == "stdout"]  # not a library's warning
    assert float(printed[-1]) == pytest.approx(recorded, abs=1e-6)
    # a second config run of the chapter (one setting changed, its models from the cache) and the
    # book's run, combined into one table by `robinterp results`, with the run and config as columns
    settings = {"saliency_images": 3}
    runner.run("robust_models", "smoke", settings=settings)
    _, other = chapters.resolve_config("robust_models", "smoke", settings=settings)
    combined = build_root() / "both.csv"
    done = run_cli("results", "training", "--chapter", "robust_models", "--to", str(combined))
    assert done.returncode == 0, done.stderr
    both = pd.read_csv(combined)
    assert set(both.run) == {"smoke", other} and both.groupby("run").config.nunique().eq(1).all()
    assert both.config.nunique() == 2
    assert (both[both.run == other].test_accuracy.values == both[both.run == "smoke"].test_accuracy.values).all()
    # built again with nothing changed: every chapter is kept, none runs, the book is rebuilt
    executed = {p: p.stat().st_mtime_ns for p in (build_root() / "executed" / "smoke").glob("*.ipynb")}
    capsys.readouterr()
    assert runner.book("smoke").exists()
    kept = [line for line in capsys.readouterr().out.splitlines() if "unchanged since it last ran" in line]
    assert len(kept) == len(chapters.CHAPTERS), kept
    assert {p: p.stat().st_mtime_ns for p in executed} == executed
    # the same book in a real browser: no console error, broken link or image, figure without alt
    # text, table wider than the page or untypeset formula (robinterp.check_html)
    from robinterp import check_html
    from tests.conftest import need_chromium

    need_chromium()  # the build itself passed
    reports = check_html.check(build_root() / "html", build_root() / "screenshots")
    assert len(reports) == len(chapters.CHAPTERS) + 3  # the chapters, introduction, results, bibliography
    problems = {r.page: r.problems for r in reports if r.problems}
    assert not problems, problems
    assert all(r.screenshot.stat().st_size > 10_000 for r in reports)


def test_cli_unwritable_build_folder_is_one_line_and_writes_nothing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    env = {**os.environ, "ROBINTERP_BUILD": str(blocker / "build")}
    result = subprocess.run(
        [sys.executable, "-m", "robinterp", "run", "robust_models", "--profile", "smoke"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "cannot write to the build folder" in result.stderr
    assert "ROBINTERP_BUILD" in result.stderr
    from robinterp.paths import cache_root

    assert not cache_root().exists(), "the cache was written before the build folder was checked"


@pytest.mark.parametrize("chapter", list(chapters.CHAPTERS))
def test_chapter_notebooks_are_valid_and_committed_without_outputs(chapter):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a cell without an id, which nbformat will refuse
        notebook = nbformat.read(REPO / chapters.CHAPTERS[chapter].notebook, as_version=4)
        nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(cell.outputs or cell.execution_count for cell in code)


def saving_notebook(path, chapter="toy"):
    """A chapter that saves one table, then divides (fails on 0), then saves another."""
    params = nbformat.v4.new_code_cell('divisor = 1\nprofile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(
        cells=[
            params,
            nbformat.v4.new_code_cell(
                "import pandas as pd\nfrom robinterp import book\n"
                "from robinterp.configs.robust_models import RobustModelsConfig\n"
                "book.show_provenance(RobustModelsConfig(eval_size=divisor or 1), profile)\n"
                f"book.save_table(pd.DataFrame({{'x': [1]}}), {chapter!r}, 'first')\n"
                "result = 10 / divisor\n"
                f"book.save_table(pd.DataFrame({{'x': [result]}}), {chapter!r}, 'second')"
            ),
        ]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def folders(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) if root.exists() else []


@pytest.mark.slow
def test_a_runs_tables_are_published_whole_on_success_and_not_at_all_on_failure(tmp_path, monkeypatch):
    path = saving_notebook(tmp_path / "toy.ipynb")
    monkeypatch.setitem(chapters.CHAPTERS, "toy", chapters.Chapter("toy", str(path), ToyConfig, toy_plan))
    results = build_root() / "results"
    notebooks.execute("toy", ToyConfig(divisor=2), "good", tmp_path / "out" / "toy.ipynb")
    assert folders(results) == ["good", "good/toy", "good/toy/first.csv", "good/toy/run.json", "good/toy/second.csv"]
    # which run made them: the label and config hash robinterp results puts beside their rows
    run = json.loads((results / "good" / "toy" / "run.json").read_text())
    from robinterp.codehash import stable_hash
    from robinterp.configs.robust_models import RobustModelsConfig

    assert run["label"] == "good" and run["config"] == stable_hash(RobustModelsConfig(eval_size=2))  # what it showed
    # an orphan of a killed run (no such process) is cleared by the next run
    orphan = results / ".good.toy.999999999.running" / "toy"
    orphan.mkdir(parents=True)
    with pytest.raises(notebooks.ChapterFailed):
        notebooks.execute("toy", ToyConfig(divisor=0), "good", tmp_path / "out" / "toy.ipynb")
    # the failed run wrote 'first' before failing: neither it nor the earlier run's tables remain
    assert folders(results) == ["good"]


@pytest.mark.slow
@pytest.mark.parametrize("profile", [None, "../../escaped"])  # other names: test_save_table_needs_the_place...
def test_papermill_by_hand_never_writes_into_a_profile_folder_or_outside_the_build(tmp_path, profile):
    """The README's papermill example: results go to a folder named by the config that ran, the
    page says it ran outside robinterp run, and a path as `profile` is one error naming it."""
    import papermill

    path = saving_notebook(tmp_path / "toy.ipynb")
    parameters = {"divisor": 4} | ({} if profile is None else {"profile": profile})
    out = tmp_path / "out.ipynb"
    results = build_root() / "results"
    if profile is None:
        papermill.execute_notebook(
            str(path), str(out), parameters=parameters, kernel_name="python3", cwd=str(tmp_path), progress_bar=False
        )
        written = folders(results)
        assert len(written) == 5 and written[0].startswith("adhoc-") and written[-1].endswith("toy/second.csv")
        assert written[-2].endswith("toy/run.json")
        assert "outside `robinterp run`" in out.read_text()
    else:
        with pytest.raises(papermill.PapermillExecutionError, match="parameter profile must be a plain name"):
            papermill.execute_notebook(
                str(path), str(out), parameters=parameters, kernel_name="python3", cwd=str(tmp_path), progress_bar=False
            )
        assert folders(results) == []
    assert not (tmp_path / "escaped").exists() and not (build_root().parent / "escaped").exists()


def test_save_table_needs_the_place_show_provenance_decides(monkeypatch):
    import pandas as pd

    from robinterp import book
    from robinterp.config import ConfigError
    from robinterp.configs.robust_models import RobustModelsConfig

    monkeypatch.setattr(book, "_place", None)
    with pytest.raises(RuntimeError, match="show_provenance"):
        book.save_table(pd.DataFrame({"x": [1]}), "toy", "t")
    cfg = RobustModelsConfig()
    assert book.results_place(cfg, "default").label.startswith("adhoc-")
    monkeypatch.setenv(book.LABEL_ENV, "default")
    monkeypatch.setenv(book.RESULTS_ENV, "/staging")
    assert book.results_place(cfg, "default") == book.ResultsPlace(Path("/staging"), "default", True)
    assert book.results_place(cfg, "smoke").label.startswith("adhoc-")  # not what the runner ran
    for bad in ("..", "../../escaped", "/tmp/abs", ".hidden", "a/b", "", "x" * 101, 3):
        with pytest.raises(ConfigError, match="plain name"):
            book.results_place(cfg, bad)


def test_a_second_command_on_the_same_build_folder_waits_for_the_first(capsys):
    """Two `robinterp book` at once on one build folder: the second waits (it used to fail with a
    colour-code banner after the first tore its staging down)."""
    import time

    build_root().mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import fcntl, sys, time\n"
                f"fh = open({str(build_root() / '.lock')!r}, 'a'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
                "print('held', flush=True); time.sleep(2)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    start = time.perf_counter()
    with runner.build_lock():
        waited = time.perf_counter() - start
    holder.wait(timeout=30)
    assert waited > 1.0 and "waiting for it to finish" in capsys.readouterr().out


@pytest.mark.slow
def test_the_kernels_own_log_lines_go_to_a_log_file_not_the_terminal(toy_chapter, tmp_path, capfd):
    notebooks.execute("toy", ToyConfig(divisor=2), "good", tmp_path / "out" / "toy.ipynb", echo=True)
    captured = capfd.readouterr()
    assert "5.0" in captured.out  # what the notebook prints still reaches the terminal
    assert "IPKernelApp" not in captured.err + captured.out
    assert "IPKernelApp" in (build_root() / "logs" / "good.toy.kernel.log").read_text()


@pytest.mark.slow
def test_ctrl_c_during_a_run_is_one_line_and_leaves_nothing_half_written(tmp_path):
    """Ctrl-C signals the terminal's foreground process group; the kernel runs in its own session
    and its traceback (it was 20 to 35 lines on the terminal) goes to its log."""
    import signal

    import yaml

    from robinterp.profiles import load_yaml, profile_path

    # the smoke sizes with more seeds, so that the run is still going when the signal comes
    config = tmp_path / "longer.yml"
    settings = {**load_yaml(profile_path("smoke"))["robust_models"], "seeds": [0, 1, 2, 3, 4, 5]}
    config.write_text(yaml.safe_dump({"robust_models": settings}))
    process = subprocess.Popen(
        [sys.executable, "-m", "robinterp", "run", "robust_models", "--config", str(config)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # as in a terminal: a shell running tests in the background (CI) starts them with SIGINT
        # ignored, which Python would inherit and never turn into KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    seen = []
    for line in process.stderr:  # interrupt as soon as the kernel reports its first trained model
        seen.append(line)
        if "seed 0 epoch 1" in line:
            break
    os.killpg(process.pid, signal.SIGINT)
    _, rest = process.communicate(timeout=60)
    err = "".join(seen) + rest
    assert process.returncode == 130, err[-1000:]
    assert err.strip().splitlines()[-1].startswith("robinterp: interrupted chapter robust_models")
    assert "Traceback" not in err and len(err.strip().splitlines()[-1]) < 300
    results = build_root() / "results"
    assert not results.exists() or list(results.rglob("*.csv")) == []
    assert list((build_root() / "executed").rglob("*.ipynb")) == []


def test_a_chapter_is_current_until_its_notebook_settings_code_or_inputs_change(tmp_path, monkeypatch):
    """What lets a second ``robinterp book`` keep a chapter instead of running it again."""
    from robinterp import stamps

    path = saving_notebook(tmp_path / "toy.ipynb")
    monkeypatch.setitem(chapters.CHAPTERS, "toy", chapters.Chapter("toy", str(path), ToyConfig, toy_plan))
    out = build_root() / "executed" / "good" / "toy.ipynb"
    config = ToyConfig(divisor=2)
    notebooks.execute("toy", config, "good", out)
    stamp = notebooks.chapter_stamp("toy", config, "good")
    assert stamps.recorded(out) == stamp and notebooks.is_current("toy", "good", out, stamp)
    assert notebooks.chapter_stamp("toy", ToyConfig(divisor=4), "good") != stamp  # settings
    assert notebooks.chapter_stamp("toy", config, "other") != stamp  # the label the page shows
    # a chapter reading the others' results changes with their stamps
    monkeypatch.setitem(
        chapters.CHAPTERS, "reader", chapters.Chapter("reader", str(path), ToyConfig, toy_plan, reads_others=True)
    )
    before = notebooks.chapter_stamp("reader", config, "good")
    assert notebooks.chapter_stamp("reader", config, "good", {"good/toy": stamp}) == before
    stamps.record(out, "0" * 16)
    assert notebooks.chapter_stamp("reader", config, "good") != before
    # ... but only those of its own label and the paper profile's, which it reads: a run under any
    # other label (a --set run, a config file's, a Lab session's) leaves it current
    before = notebooks.chapter_stamp("reader", config, "good")
    for label, reads in (("good-set-1234abcd", False), ("adhoc-99", False), ("paper", True)):
        (build_root() / "executed" / label).mkdir()
        stamps.record(build_root() / "executed" / label / "toy.ipynb", "1" * 16)
        assert (notebooks.chapter_stamp("reader", config, "good") != before) == reads, label
    path.write_text(path.read_text().replace("10 / divisor", "20 / divisor"))  # the notebook
    assert notebooks.chapter_stamp("toy", config, "good") != stamp
    # a failed run leaves no stamp, and so nothing a later book could keep
    with pytest.raises(notebooks.ChapterFailed):
        notebooks.execute("toy", ToyConfig(divisor=0), "good", out)
    assert stamps.recorded(out) is None and not notebooks.is_current("toy", "good", out, stamp)


def test_a_readers_upstream_is_its_labels_stamps_with_the_builds_own_first(tmp_path):
    """What a build passes for the chapters it is about to run (``overrides``) replaces their recorded
    stamps, and neither a recorded nor a passed stamp of another label counts."""
    from robinterp import stamps

    executed = tmp_path / "executed"
    for label, chapter in (("good", "toy"), ("other", "toy"), ("paper", "toy"), ("good", "reader")):
        (executed / label).mkdir(parents=True, exist_ok=True)
        stamps.record(executed / label / f"{chapter}.ipynb", f"{label} as recorded")
    found = stamps.upstream(executed, ["reader"], ("good", "paper"), {"good/toy": "about to run", "other/x": "x"})
    assert found == {"good/toy": "about to run", "paper/toy": "paper as recorded"}


# a CLI run whose chapter is interrupted after an asyncio task failed with nothing to retrieve it
INTERRUPTED_AFTER_A_FAILED_TASK = textwrap.dedent(
    """
    import asyncio, sys
    from robinterp import chapters, cli, notebooks, runner
    failed = []
    def interrupted(*args, **kwargs):
        loop = asyncio.new_event_loop()
        async def watcher():
            raise RuntimeError("Kernel died")
        failed.append(loop.create_task(watcher()))
        loop.run_until_complete(asyncio.sleep(0.01))  # the task fails; nothing retrieves it
        loop.close()
        raise KeyboardInterrupt
    runner.run = interrupted
    code = cli.main(["run", "robust_models", "--profile", "smoke"])
    failed.clear()  # asyncio logs the failure when the task is collected
    sys.exit(code)
    """
)


def test_ctrl_c_stays_one_line_when_an_unretrieved_task_failure_is_logged_at_exit():
    """After an interrupt the kernel is shut down on the way out; nbclient's watcher tasks can then
    fail with nobody to retrieve them, and asyncio logs their traceback when the interpreter exits,
    after the CLI's one line (seen under load: "DeadKernelError: Kernel died" as the last line)."""
    result = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_AFTER_A_FAILED_TASK], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 130, result.stderr[-1000:]
    assert result.stderr.strip().splitlines()[-1].startswith("robinterp: interrupted"), result.stderr[-1000:]
    assert "Traceback" not in result.stderr
    assert "Kernel died" not in result.stderr and "never retrieved" not in result.stderr, result.stderr[-1000:]


@pytest.mark.parametrize("planted", ["results/good", "executed/good", "logs/good.toy.kernel.log"])
def test_a_link_planted_in_the_build_folder_is_never_followed(toy_chapter, tmp_path, planted):
    """With results/<label>, executed/<label> or a kernel log made a link to a place outside the
    build folder, a run deleted a file there, overwrote a notebook and wrote its log there."""
    from robinterp.paths import build_root

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "toy").mkdir()
    (outside / "toy.ipynb").write_text("someone's notebook")
    (outside / "toy" / "table.csv").write_text("someone's table")
    link = build_root() / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside / "toy.ipynb" if planted.endswith(".log") else outside)
    with pytest.raises(RobinterpError, match="is a symbolic link"):
        notebooks.execute("toy", ToyConfig(divisor=2), "good", build_root() / "executed" / "good" / "toy.ipynb")
    assert (outside / "toy.ipynb").read_text() == "someone's notebook"
    assert (outside / "toy" / "table.csv").read_text() == "someone's table"


def test_set_replaces_one_setting_and_the_label_says_so():
    from robinterp.config import parse_settings

    settings = parse_settings(["eval_size=20", "seeds=[0]", "methods={standard: {method: standard}}"])
    config, label = chapters.resolve_config("robust_models", "smoke", settings=settings)
    plain, _ = chapters.resolve_config("robust_models", "smoke")
    assert (config.eval_size, config.seeds, config.labels()) == (20, (0,), ["standard"])
    assert config.epochs == plain.epochs  # everything else is the profile's
    assert label.startswith("smoke-set-") and label != "smoke"
    assert chapters.resolve_config("robust_models", "smoke", settings=settings)[1] == label  # stable
    for bad, needle in (
        (["eval_size"], "--set takes KEY=VALUE"),
        (["eval_size=1", "eval_size=2"], "given twice"),
        (["seeds=[0"], "not valid YAML"),
    ):
        with pytest.raises(ConfigError, match=needle):
            parse_settings(bad)
    with pytest.raises(ConfigError, match="did you mean 'eval_size'"):
        chapters.resolve_config("robust_models", "smoke", settings={"evalsize": 20})


def test_a_book_refuses_a_setting_no_chapter_has_and_a_chapter_that_does_not_exist():
    with pytest.raises(ConfigError, match="--set nothing: no chapter has this setting"):
        runner.book("smoke", settings={"nothing": 1})
    with pytest.raises(ConfigError, match="unknown chapter 'scat'"):
        runner.book("smoke", rerun=["scat"])


@pytest.mark.slow
def test_a_cell_that_runs_past_the_cell_timeout_fails_its_chapter(tmp_path, monkeypatch):
    params = nbformat.v4.new_code_cell('divisor = 1\nprofile = "default"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell("import time\ntime.sleep(divisor)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "sleepy.ipynb")
    monkeypatch.setitem(
        chapters.CHAPTERS, "toy", chapters.Chapter("toy", str(tmp_path / "sleepy.ipynb"), ToyConfig, toy_plan)
    )
    out = tmp_path / "out" / "toy.ipynb"
    notebooks.execute("toy", ToyConfig(divisor=1), "good", out, cell_timeout=30)
    assert out.exists()
    with pytest.raises(notebooks.ChapterFailed, match="(?i)timeout|timed out"):
        notebooks.execute("toy", ToyConfig(divisor=20), "good", out, cell_timeout=2)
    assert not out.exists()
