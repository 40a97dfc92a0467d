"""Command line: ``robinterp run [--check] | sweep | book | list | data``.

Every error a user can fix is one line on stderr and a non-zero exit code:
2 for a bad config or input, 1 for a chapter that failed while executing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from robinterp import RobinterpError, __version__
from robinterp.config import one_line, parse_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="robinterp", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"robinterp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute one chapter headless (papermill)")
    run.add_argument("chapter")
    group = run.add_mutually_exclusive_group()
    group.add_argument("--profile", default=None, help="smoke, default (the default), long or paper")
    group.add_argument("--config", type=Path, help="a YAML file with a section per chapter")
    run.add_argument(
        "--check", action="store_true", help="validate and build every training spec, attack and metric; run nothing"
    )

    run.add_argument("--threads", type=int, help="torch threads in the chapter's kernel (default: as this process)")
    _set_argument(run)
    _cell_timeout_argument(run)

    sweep = sub.add_parser("sweep", help="execute one chapter under several config files")
    sweep.add_argument("chapter")
    sweep.add_argument("--config", type=Path, action="append", required=True, help="repeat for each config")
    _executor_arguments(sweep)
    _set_argument(sweep)

    book = sub.add_parser("book", help="execute every chapter and build the HTML book")
    book.add_argument("--profile", default="default")
    book.add_argument(
        "--rerun",
        nargs="*",
        metavar="CHAPTER",
        help="run these chapters (none named: every chapter) even if unchanged since they last ran (by default "
        "they are kept)",
    )
    book.add_argument(
        "--check",
        action="store_true",
        help="validate every chapter and estimate the time on this machine from earlier runs here; run nothing",
    )
    _executor_arguments(book)
    _set_argument(book)

    ladder = sub.add_parser(
        "ladder", help="one chapter at 1x, 2x, 4x... of its training budget, and how each verdict fares"
    )
    ladder.add_argument("chapter")
    ladder.add_argument("--profile", default=None, help="smoke, default (the default), long or paper")
    ladder.add_argument(
        "--rungs",
        type=float,
        nargs="+",
        default=None,
        help="budget factors, from 1 up (default: the profile's ladder setting, else 1 2 4)",
    )
    ladder.add_argument(
        "--check", action="store_true", help="validate every rung and estimate the time on this machine; run nothing"
    )
    ladder.add_argument("--threads", type=int, help="torch threads in the chapter's kernel (default: as this process)")

    sub.add_parser("list", help="the chapters, profiles, data sets, training methods, attacks, explainers and metrics")

    stacked = sub.add_parser("results", help="one table of a chapter from several runs, stacked, as CSV")
    stacked.add_argument("table", help="the table's name (its file name without .csv: verdicts, training, ...)")
    stacked.add_argument("--chapter", required=True)
    stacked.add_argument("--run", action="append", help="a run's label (profile, config-<file>); repeat; none: all")
    stacked.add_argument("--to", type=Path, help="write the CSV here (default: print it)")

    trained = sub.add_parser("models", help="the models the chapters trained; export one with its card")
    trained.add_argument("--profile", default="default")
    models_sub = trained.add_subparsers(dest="models_command")
    export = models_sub.add_parser("export", help="write a model's weights (safetensors) and model card to a folder")
    export.add_argument("chapter")
    export.add_argument("label")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--dataset", help="the data set, where the chapter trained the label on several")
    export.add_argument("--to", type=Path, required=True, help="the folder to write into")

    data = sub.add_parser("data", help="data sets")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    fetch = data_sub.add_parser("fetch", help="obtain and verify data sets")
    fetch.add_argument("names", nargs="+")
    return parser


def _cell_timeout_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell-timeout",
        type=float,
        metavar="SECONDS",
        help="fail a chapter whose cell runs longer (default: no limit)",
    )


def _set_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="replace one setting (a YAML value: seeds=[0,1], epochs=2); repeat for more; the run's label says so",
    )


def _executor_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="run the chapter runs on a local Dask cluster of N workers")
    where.add_argument(
        "--scheduler", help="run them on a running Dask scheduler (tcp://HOST:PORT), e.g. one dask-jobqueue started"
    )
    where.add_argument(
        "--scheduler-file",
        help="the same, found through the JSON file the scheduler wrote (dask scheduler --scheduler-file)",
    )
    parser.add_argument(
        "--min-workers",
        type=int,
        default=1,
        help="on a running scheduler: workers to wait for before submitting (default 1)",
    )
    parser.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for them (default 600; queued SLURM jobs take time)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads per chapter run (default: this machine's cores; on Dask, a worker machine's cores "
        "shared by its workers)",
    )
    _cell_timeout_argument(parser)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) >= 3 and argv[0] == "run" and ({"-h", "--help"} & set(argv[2:])):
        from robinterp import catalog, chapters

        if argv[1] in chapters.CHAPTERS:  # the chapter's own settings, not only the command's flags
            print(catalog.chapter_help(argv[1]), end="")
            return 0
        if not argv[1].startswith("-"):  # a mistyped chapter: say so, not the command's help with exit 0
            try:
                chapters.get_chapter(argv[1])
            except RobinterpError as err:
                print(f"robinterp: error: {one_line(str(err))}", file=sys.stderr)
                return 2
    args = _parser().parse_args(argv)
    import logging

    # papermill's own warnings (not its per-cell bookkeeping) reach the terminal; the
    # notebook's printed progress comes through echo=True below
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("papermill: %(message)s"))
    papermill_log = logging.getLogger("papermill")
    papermill_log.addHandler(handler)
    papermill_log.setLevel(logging.WARNING)
    papermill_log.propagate = False
    what = {
        "run": f"chapter {getattr(args, 'chapter', '')}",
        "sweep": f"the sweep of {getattr(args, 'chapter', '')}",
        "book": "the book",
        "ladder": f"the ladder of {getattr(args, 'chapter', '')}",
        "data": "the data fetch",
        "list": "the listing",
        "models": "the models",
        "results": "the results",
    }[args.command]
    try:
        settings = parse_settings(getattr(args, "set", None))
        _validate(args, settings)
        from robinterp import runner

        if args.command == "run" and args.check:
            from robinterp import estimate

            _executor(args)  # --threads and --cell-timeout are checked as a run would
            print(runner.check(args.chapter, args.profile, args.config, settings))
            print(estimate.run_estimate(args.chapter, args.profile, args.config, settings).describe())
        elif args.command == "run":
            executor = _executor(args)
            print(
                runner.run(
                    args.chapter,
                    args.profile,
                    args.config,
                    echo=True,
                    threads=executor.threads,
                    settings=settings,
                    cell_timeout=executor.cell_timeout,
                )
            )
        elif args.command == "sweep":
            for path in runner.sweep(args.chapter, args.config, echo=True, executor=_executor(args), settings=settings):
                print(path)
        elif args.command == "book" and args.check:
            from robinterp import chapters, estimate

            _executor(args)
            for chapter in chapters.CHAPTERS:
                print(runner.check(chapter, args.profile, None, settings))
            total, per_chapter = estimate.book_estimate(args.profile, settings)
            for chapter, part in per_chapter.items():
                print(f"{chapter}: {part.minutes:.1f} min")
            print(f"the book under {args.profile}: {total.describe()}")
        elif args.command == "book":
            print(runner.book(args.profile, echo=True, executor=_executor(args), rerun=args.rerun, settings=settings))
        elif args.command == "ladder":
            import pandas as pd

            from robinterp import estimate, ladder, profiles

            executor = _executor(args)
            rungs = args.rungs or profiles.ladder_rungs(args.profile) or ladder.RUNGS
            if args.check:
                ladder.check_rungs(rungs)
                print(runner.check(args.chapter, args.profile, None, settings))
                ladder_estimate = estimate.run_estimate(args.chapter, args.profile, None, settings, rungs)
                print(f"the ladder {' '.join(f'{r:g}x' for r in rungs)}: {ladder_estimate.describe()}")
                return 0
            target = ladder.climb(args.chapter, args.profile, rungs, echo=True, threads=executor.threads)
            table = pd.read_csv(target)
            print(table["course"].value_counts().rename_axis("course").to_string())
            print(target)
        elif args.command == "list":
            from robinterp import catalog

            print(catalog.listing(), end="")
        elif args.command == "results":
            from robinterp import results

            table = results.combine(args.table, args.chapter, args.run or ())
            if args.to:
                table.to_csv(args.to, index=False)
                print(f"{args.to}: {len(table)} rows from {table['run'].nunique()} run(s)")
            else:
                print(table.to_csv(index=False), end="")
        elif args.command == "models":
            from robinterp import trained

            if args.models_command == "export":
                where = trained.export(args.chapter, args.label, args.to, args.seed, args.profile, args.dataset)
                print(f"{where}: weights.safetensors, MODEL_CARD.md, card.json")
            else:
                table = trained.listing(args.profile)
                if table.empty:
                    print(f"no chapter has run under {args.profile} here: `robinterp book --profile {args.profile}`")
                else:
                    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        elif args.command == "data":
            from robinterp import data

            for name in args.names:
                spec = data.ensure(name)
                print(f"{spec.name}: all {len(spec.checksums)} files verified")
    except RobinterpError as err:  # a chapter that failed while executing: 1; bad input: 2
        print(one_line(f"robinterp: error: {err}"), file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except Exception as err:  # anything unforeseen: still one line, and a non-zero exit
        print(one_line(f"robinterp: error: unexpected {type(err).__name__}: {err}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # the kernel is shut down on the way out, and nbclient's watcher tasks may then fail with
        # nothing to retrieve them: asyncio would log their traceback at exit, after this one line
        logging.getLogger("asyncio").disabled = True
        print(
            f"robinterp: interrupted {what}; finished models and tables stay in the cache and nothing "
            f"half-written is published, so the same command resumes from there",
            file=sys.stderr,
        )
        return 130
    return 0


def _validate(args: argparse.Namespace, settings: dict[str, Any]) -> None:
    """Every config the command will run, resolved and validated before anything imports torch, so
    that a config error costs a fraction of a second (the runner validates them again, cheaply). The
    command's own options (--workers, --threads ...) are checked first, as before any config."""
    from robinterp import chapters

    if args.command in ("run", "sweep", "book", "ladder"):
        _executor(args)
    if args.command in ("run", "ladder"):
        chapters.resolve_config(args.chapter, args.profile, getattr(args, "config", None), settings)
    elif args.command == "sweep":
        for path in args.config:
            chapters.resolve_config(args.chapter, config_file=path, settings=settings)
    elif args.command == "book":
        chapters.book_configs(args.profile, settings)
        for name in args.rerun or ():
            chapters.get_chapter(name)


def _executor(args: argparse.Namespace) -> Any:
    from robinterp.executors import Executor

    # the one place --workers, --scheduler and --threads are checked (``run`` takes only --threads)
    return Executor(
        workers=getattr(args, "workers", None),
        scheduler=getattr(args, "scheduler", None),
        threads=args.threads,
        scheduler_file=getattr(args, "scheduler_file", None),
        min_workers=getattr(args, "min_workers", 1),
        wait=getattr(args, "wait", 600.0),
        cell_timeout=getattr(args, "cell_timeout", None),
    )


if __name__ == "__main__":
    sys.exit(main())
