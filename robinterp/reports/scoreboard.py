"""The reproduction scoreboard: every paper chapter's verdicts in one table, read from the
verdict tables the chapters saved (``_build/results/<profile>/<chapter>/verdicts.csv``),
never retyped. A chapter whose results are missing gives one row saying so; the claims no
profile here can test are listed with the reason.

Rows are the evidence; what the scoreboard counts are the papers' claims: the rows of one claim
(its attacks, radii, metrics, data sets) are its sub-rows, corrected within the claim by Holm's
method and summed up by ``rules.claim_verdict``."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from robinterp.profiles import BESIDE
from robinterp.reports import rules
from robinterp.titles import METRIC_TITLES, with_metric_titles

NOT_RUN = "not run"
UNTESTABLE = "not testable here"
INTERVAL_RULE = "interval over seeds"  # the book's rule (robinterp.reports.rules)
SEED_RULE = "older rule"  # verdict tables saved by an older build: their levels are not this rule's
OLD_LEVELS = ("reproduced", "partly", "not reproduced", "contradicted")
# what the page shows of each claim, the verdict first; the saved table also has the measure
SHOWN = ("verdict", rules.DATA_SET, "ours", "rule", "paper's value", "where")
# what the page shows of each claim
CLAIM_SHOWN = ("verdict", "sub-rows", "where", "seeds for 2δ")

# a claim's sub-rows differ in a trailing "(attack, eps)" or "(measure, data set)", or in the metric
_SUB_ROW = re.compile(r"( on (" + "|".join(map(re.escape, METRIC_TITLES.values())) + r"))?( \([^()]*\))?$")


def headline(claim: str) -> str:
    """The claim a scoreboard row is evidence for: its text without the attack and radius, the
    measure and data set, or the metric that tell its sub-rows apart ("SGT k=0.3 is more robust
    than ST (PGD, eps 0.2)" is a sub-row of "SGT k=0.3 is more robust than ST")."""
    return _SUB_ROW.sub("", claim) or claim


@dataclasses.dataclass(frozen=True)
class PaperChapter:
    """A chapter that reproduces one paper: how the scoreboard names it and which of its
    verdict rows are the paper's claims (``paper_rows``)."""

    chapter: str
    paper: str
    paper_rows: Callable[[pd.DataFrame], pd.DataFrame] = lambda frame: frame
    context: tuple[str, ...] = ()
    """Columns of the chapter's verdicts that complete its claim's text (SCAAT's "sparser maps"
    needs the measure and the data set); they tell the claim's sub-rows apart."""


# claims the SGT chapter judges for another paper: Karkehabadi et al.'s, that standard training
# is more robust than SGT, is the mirror of Guesmi et al.'s first claim (the same difference, the
# opposite verdict) and would count against a paper that does not make it
SGT_OTHER_SOURCES = ("karkehabadi2024sgt",)


def _guesmi_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The SGT chapter's claims at one radius (its judgements of Figures 2 and 4 across the whole
    eps range, per attack, stay on its page), without other papers' claims or gains derived from
    the paper's figures."""
    across = frame["claim"].str.contains(" across eps ", regex=False)
    other = frame["source"].isin(SGT_OTHER_SOURCES) if "source" in frame.columns else False
    # a gain the page derives from the paper's figures beside the one its text states
    derived = frame["where"].fillna("").str.startswith("derived") if "where" in frame.columns else False
    return frame[~across & ~other & ~derived]


PAPERS = (
    PaperChapter("saliency_guided_training", "Guesmi et al. (SGT, ASGT)", _guesmi_rows),
    PaperChapter("neuron_sensitivity", "Moshe et al. (NsLoss)"),
    PaperChapter("robust_attribution", "Zeng et al. (supplement)"),
    # SCAAT's abstract compares with ordinary training: its rows against PGD-AT and SGT are the
    # book's own comparisons (on the chapter's page), not the paper's claims
    PaperChapter(
        "scaat",
        "Xu et al. (SCAAT, reconstruction)",
        # against ordinary training, found by its method (a table saved before that column: its label)
        lambda frame: frame[
            frame["versus method"] == "standard" if "versus method" in frame.columns else frame["versus"] == "ST"
        ],
        ("measure",),
    ),
)

# (paper, claim, where in the paper, why no profile here tests it)
NOT_TESTABLE = (
    (
        "Guesmi et al. (SGT, ASGT)",
        "+20 points of PGD accuracy over ST on CIFAR-10 (eps 0.02)",
        "abstract",
        "CIFAR-10 is not reachable offline; `book/configs/saliency_guided_training_cifar10_paper.yml` runs it "
        "where it is",
    ),
    (
        "Guesmi et al. (SGT, ASGT)",
        "SGT gains over 20 points on ST under FGSM on CIFAR-10 (eps 0.025)",
        "§4.2",
        "CIFAR-10 is not reachable offline (the same configuration runs it where it is)",
    ),
    (
        "Guesmi et al. (SGT, ASGT)",
        "ASGT gains over 30 points on ST under FGSM on CIFAR-10 (eps 0.025)",
        "§4.3",
        "CIFAR-10 is not reachable offline (the same configuration runs it where it is)",
    ),
    (
        "Moshe et al. (NsLoss)",
        "Tables 1-4: the seven metrics' levels on ImageNette with PreResNet10 and VGG19",
        "section 5, Tables 1-4",
        "ImageNette's archive is in no package registry, and 40 to 120 epochs of "
        "PreResNet10 or VGG19 on 224x224 images need a GPU",
    ),
    (
        "Zeng et al. (supplement)",
        "Table 1's ROAR levels on CIFAR-10",
        "B, Table 1",
        "CIFAR-10 is not reachable offline; the chapter compares the orderings on Fashion-MNIST",
    ),
    (
        "Xu et al. (SCAAT, reconstruction)",
        "the claims hold on pathological images",
        "abstract",
        "No pathology data set is reachable offline (PathMNIST under `--profile paper` where it is)",
    ),
)


def verdict_path(root: Path, profile: str, chapter: str) -> Path:
    return root / "results" / profile / chapter / "verdicts.csv"


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return number


def _ours(row: pd.Series) -> str:
    """What the chapter measured, as one cell: the effect and its interval, or the older rule's
    numbers."""
    if "effect" in row and not math.isnan(_number(row["effect"])):
        if "low" in row and not math.isnan(_number(row["low"])):
            return rules.effect_text(_number(row["effect"]), _number(row["low"]), _number(row["high"]))
        return f"{_number(row['effect']):.3g}"
    for column in ("ours", "mean gap (points)"):
        if column in row and not math.isnan(_number(row[column])):
            return f"{_number(row[column]):.3g}"
    for column in ("seeds where it holds", "seeds agreeing"):
        if isinstance(row.get(column), str):
            return f"{row[column]} seeds"
    return "—"


def _claim(row: pd.Series, context: tuple[str, ...]) -> str:
    parts = ", ".join(str(row[c]) for c in context if isinstance(row.get(c), str))
    claim = with_metric_titles(str(row["claim"]))  # tables saved before the pages used titles
    return f"{claim} ({parts})" if parts else claim


def normalise(paper: PaperChapter, frame: pd.DataFrame) -> pd.DataFrame:
    """A chapter's verdict table as the scoreboard's columns: paper, claim, where, paper's value,
    ours, rule, verdict."""
    frame = paper.paper_rows(frame)
    # per row: a chapter may judge some claims by the interval and count seeds for others
    rule = pd.Series(INTERVAL_RULE, index=frame.index)
    if "rule" in frame.columns:  # a row that says how it was judged (NsLoss's best of four)
        rule = frame["rule"].where(frame["rule"].notna(), rule)
    rule = rule.where(frame["verdict"].isin(rules.LEVELS), "—")  # not run, not judged: no rule applied
    rule = rule.mask(frame["verdict"].isin(OLD_LEVELS), SEED_RULE)
    # where in the paper, when the chapter says; its citation key would repeat the paper's name
    # and widen the table past the page
    where = frame["where"] if "where" in frame.columns else pd.Series("—", index=frame.index)
    papers_value = (
        frame["paper"].map(lambda v: "—" if math.isnan(_number(v)) else f"{_number(v):.3g}")
        if "paper" in frame.columns
        else pd.Series("—", index=frame.index)
    )
    measure = frame["measure"].fillna("") if "measure" in frame.columns else pd.Series("", index=frame.index)
    verdict, why = zip(*(_verdict_and_why(row) for _, row in frame.iterrows())) if len(frame) else ((), ())
    claims = [_claim(row, paper.context) for _, row in frame.iterrows()]

    def column(name: str) -> list[float]:
        values = frame[name] if name in frame.columns else pd.Series(math.nan, index=frame.index)
        return [_number(v) for v in values]

    return pd.DataFrame(
        {
            "paper": paper.paper,
            "claim": claims,
            # a table saved before the data set was a column: not said
            rules.DATA_SET: frame[rules.DATA_SET].fillna("—") if rules.DATA_SET in frame.columns else "—",
            "headline": [headline(with_metric_titles(str(c))) for c in frame["claim"]],
            "where": where.fillna("—").astype(str),
            "paper's value": papers_value,
            "ours": [_ours(row) for _, row in frame.iterrows()],
            "rule": rule,
            "verdict": list(verdict),
            "measure": measure.astype(str),
            "why": list(why),
            "p": column("p"),
            "seeds needed": column("seeds needed"),
            "seeds": [_seeds(row) for _, row in frame.iterrows()],
        }
    )


def _seeds(row: pd.Series) -> float:
    """The seeds a row was judged on, from its "k of S" column."""
    for column in ("seeds agreeing", "seeds where it holds"):
        found = re.search(r"of (\d+)", str(row.get(column, "")))
        if found:
            return float(found.group(1))
    return math.nan


def corrected(board: pd.DataFrame) -> pd.DataFrame:
    """The board with each claim's sub-rows corrected by Holm's method (``rules.holm``): a decisive
    verdict that does not survive is *inconclusive*, with the reason in ``why``."""
    frames = []
    for _, rows in board.groupby(["paper", "headline"], sort=False, dropna=False):
        fixed = rules.holm(rows.rename(columns={"why": "reason"})).rename(columns={"reason": "why"})
        frames.append(fixed)
    return pd.concat(frames).loc[board.index] if frames else board


def claims(board: pd.DataFrame) -> pd.DataFrame:
    """One row per paper and claim: its verdict from its sub-rows (``rules.claim_verdict``), the
    sub-rows' verdicts after Holm's correction, where in the paper, why it is not judged, and the
    seeds its least powered ordering would need to call a true effect of twice its smallest effect
    *consistent* 4 times in 5 (">50" where more seeds would not do it; "—" for other kinds of
    claim)."""
    rows = []
    for (paper, claim), sub in board.groupby(["paper", "headline"], sort=False):
        if not sub["verdict"].isin([*rules.LEVELS, rules.NOT_JUDGED]).any():
            # not testable, not run, or an older build's levels: the row's own verdict
            verdict, why, evidence = sub["verdict"].iloc[0], str(sub["why"].iloc[0]), "—"
        else:
            # ``corrected`` has applied Holm to the board's rows
            verdict, why, evidence = rules.summarise_claim(sub.rename(columns={"why": "reason"}))
        wheres = [w for w in dict.fromkeys(sub["where"].astype(str)) if w not in ("—", "nan", "")]
        rows.append(
            {
                "paper": paper,
                "claim": claim,
                "verdict": verdict,
                "sub-rows": evidence,
                "where": "; ".join(wheres) or "—",
                "why": why,
                "seeds": sub["seeds"].max(),
                "seeds for 2δ": _seeds_needed_text(sub),
            }
        )
    return pd.DataFrame(rows)


def _seeds_needed_text(sub: pd.DataFrame) -> str:
    """The most seeds any judged ordering of a claim needs (``rules.Judgement.seeds_needed``)."""
    judged = sub[sub["verdict"].isin(rules.LEVELS) & sub["rule"].eq(INTERVAL_RULE)]
    needed = judged["seeds needed"].dropna()  # NaN: not an ordering
    if needed.empty:
        return "—"
    return f">{rules.MAX_SEEDS_NEEDED}" if math.isinf(needed.max()) else f"{int(needed.max())}"


def _verdict_and_why(row: pd.Series) -> tuple[str, str]:
    """A saved verdict as the scoreboard counts it: the rule's levels as they are; "not judged"
    with its reason; a claim the chapter could not run ("not run (no SGT model ...)") is not
    testable here, with the chapter's reason; an older build's levels are kept, marked by their
    rule."""
    verdict = str(row["verdict"])
    reason = row.get("reason")
    reason = reason if isinstance(reason, str) else ""
    if verdict.startswith("not run (") and verdict.endswith(")"):
        return UNTESTABLE, verdict[len("not run (") : -1]
    if verdict.startswith("not judged (") and verdict.endswith(")"):
        return rules.NOT_JUDGED, verdict[len("not judged (") : -1]
    return verdict, reason


def chapter_rows(root: Path, profile: str, paper: PaperChapter) -> pd.DataFrame:
    """The chapter's normalised verdicts under ``profile``, or one row saying they are missing."""
    path = verdict_path(root, profile, paper.chapter)
    if not path.is_file():
        return pd.DataFrame(
            [
                {
                    "paper": paper.paper,
                    "claim": f"(no results: `robinterp run {paper.chapter} --profile {profile}` makes them)",
                    rules.DATA_SET: "—",
                    "where": "—",
                    "paper's value": "—",
                    "ours": "—",
                    "rule": "—",
                    "verdict": NOT_RUN,
                }
            ]
        )
    return normalise(paper, pd.read_csv(path))


def scoreboard(root: Path, profile: str = "default", other: str = BESIDE) -> pd.DataFrame:
    """Every paper chapter's headline verdicts under ``profile``, with the ``other`` profile's
    verdict beside each claim where that profile was run, then the claims no profile here tests."""
    frames = []
    for paper in PAPERS:
        rows = chapter_rows(root, profile, paper)
        if verdict_path(root, other, paper.chapter).is_file():
            theirs = normalise(paper, pd.read_csv(verdict_path(root, other, paper.chapter)))
            theirs = theirs.drop_duplicates("claim").set_index("claim")
            rows[f"ours ({other})"] = rows["claim"].map(theirs["ours"]).fillna("—")
            rows[f"verdict ({other})"] = rows["claim"].map(theirs["verdict"]).fillna("—")
        else:
            rows[f"ours ({other})"], rows[f"verdict ({other})"] = "—", NOT_RUN
        frames.append(rows)
    frames.append(
        pd.DataFrame(
            [
                {
                    "paper": paper,
                    "claim": claim,
                    rules.DATA_SET: "—",
                    "where": where,
                    "paper's value": "—",
                    "ours": "—",
                    "rule": "—",
                    "verdict": UNTESTABLE,
                    f"ours ({other})": "—",
                    f"verdict ({other})": UNTESTABLE,
                    "why": why,
                }
                for paper, claim, where, why in NOT_TESTABLE
            ]
        )
    )
    board = pd.concat(frames, ignore_index=True)
    # a row with no verdict table behind it (not run, not testable) has none of these columns;
    # with no paper chapter run yet no row has them, and ``claims`` reads them (the saved table
    # keeps its columns either way)
    for column in ("why", "measure"):
        board[column] = board[column].fillna("") if column in board else ""
    for column in ("p", "seeds needed", "seeds"):
        board[column] = board[column] if column in board else math.nan
    board["headline"] = board["headline"].fillna(board["claim"]) if "headline" in board else board["claim"]
    return corrected(board)


ORDER = (*rules.LEVELS, rules.NOT_JUDGED, NOT_RUN, UNTESTABLE)


def tally(board: pd.DataFrame, column: str = "verdict") -> pd.DataFrame:
    """Papers x verdicts: how many claims (``claims``' rows) or rows got each verdict (the rule's
    four levels, not judged, then the rest). Each claim's verdict is calibrated (its sub-rows
    corrected within it); across claims the counts are descriptive (claims share models):
    ``chance_column`` says how many decisive ones chance allows."""
    counts = board.groupby(["paper", column]).size().unstack(fill_value=0)
    columns = [c for c in ORDER if c in counts.columns] + [c for c in counts.columns if c not in ORDER]
    return counts[columns].reindex([p.paper for p in PAPERS]).fillna(0).astype(int)


CHANCE = "decisive by chance (at most)"


def chance_column(counts: pd.DataFrame) -> pd.Series:
    """Per paper, the most decisive verdicts the rule would give were none of its judged claims
    true: 5% of them (the rule's calibrated bound; ``rules.simulate_no_effect`` finds less)."""
    judged = counts[[c for c in rules.LEVELS if c in counts.columns]].sum(axis=1)
    return (0.05 * judged).round(1).rename(CHANCE)


def page_tables(board: pd.DataFrame, other: str = BESIDE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the claims judged here, the claims no profile here tests) as a page shows them: indexed by
    paper and claim; the ``other`` profile's verdict only where that profile was run; the reason
    only for the claims not tested."""
    judged = board[board.verdict != UNTESTABLE]
    columns = list(SHOWN) + ([f"verdict ({other})"] if (judged[f"verdict ({other})"] != NOT_RUN).any() else [])
    # the reason of a row not judged, or of a decisive verdict that did not survive the correction
    judged = judged.assign(verdict=[f"{v} ({w})" if w else v for v, w in zip(judged["verdict"], judged["why"])])
    untested = board[board.verdict == UNTESTABLE]
    return (judged.set_index(["paper", "claim"])[columns], untested.set_index(["paper", "claim"])[["where", "why"]])


def short_of_seeds(claims_: pd.DataFrame) -> pd.DataFrame:
    """The inconclusive claims (``claims``' rows) whose orderings need more seeds than they had to
    call a true effect of twice their smallest effect *consistent* 4 times in 5."""
    open_ = claims_[claims_["verdict"] == rules.INCONCLUSIVE]
    needed = pd.to_numeric(open_["seeds for 2δ"].str.lstrip(">"), errors="coerce")
    return open_[needed > open_["seeds"]]


def beyond_any_seeds(short: pd.DataFrame) -> int:
    """How many of ``short_of_seeds``' claims no number of seeds up to the limit would settle."""
    return int(short["seeds for 2δ"].str.startswith(">").sum())


def seeds_text(claims_: pd.DataFrame) -> str:
    """The seeds behind the claims that the "seeds for 2δ" column speaks of (judged, with an
    ordering among their sub-rows), as the page says it: "5", or "3 to 5" where their chapters
    differ; "—" where there are none."""
    judged = claims_[claims_["verdict"].isin(rules.LEVELS) & (claims_["seeds for 2δ"] != "—")]
    counts = pd.to_numeric(judged["seeds"], errors="coerce").dropna()
    if counts.empty:
        return "—"
    low, high = int(counts.min()), int(counts.max())
    return f"{low}" if low == high else f"{low} to {high}"


def underpowered_text(claims_: pd.DataFrame) -> str:
    """Which inconclusive claims are underpowered in this build, and by how much: those whose
    orderings need more seeds than they had to call a true effect of twice their smallest effect
    *consistent* 4 times in 5 (``claims``' "seeds for 2δ"). A decisive claim or one of no
    meaningful difference was settled; power matters where the interval left it open."""
    open_ = claims_[claims_["verdict"] == rules.INCONCLUSIVE]
    short = short_of_seeds(claims_)
    if short.empty:
        return "No inconclusive claim needs more seeds than it had to detect twice its smallest effect."
    beyond = beyond_any_seeds(short)
    noise = (
        f"; for {beyond} of them no number of seeds up to {rules.MAX_SEEDS_NEEDED} would do, as the test set's "
        "own noise is wider than the smallest effect (more test images, or a larger effect, would settle them)"
    )
    return (
        f"**{len(short)}** of the {len(open_)} inconclusive claims are underpowered here: their last column "
        f"exceeds the seeds they had{noise if beyond else ''}."
    )


def claim_table(claims_: pd.DataFrame) -> pd.DataFrame:
    """The claims judged or not judged here (``claims``) as a page shows them: indexed by paper and
    claim, the reason beside a claim that is not judged."""
    shown = claims_[~claims_["verdict"].isin([UNTESTABLE, NOT_RUN])]
    # the reason's first clause: its numbers are on the chapter's page and in the rows below
    shown = shown.assign(
        verdict=[
            f"{v} ({w.split(' (')[0]})" if w and v == rules.NOT_JUDGED else v
            for v, w in zip(shown["verdict"], shown["why"])
        ]
    )
    return shown.set_index(["paper", "claim"])[list(CLAIM_SHOWN)]
