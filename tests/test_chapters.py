"""Chapter logic that turns measurements into verdicts, on hand-made tables."""

from __future__ import annotations

import pandas as pd

from robinterp.experiments import saliency_guided_training as sgt_chapter


def curves(values):
    """values: {(method, seed): accuracy at PGD eps 0.2 and FGSM eps 0.25}."""
    return pd.DataFrame([{"attack": attack, "eps": eps, "method": m, "seed": s, "accuracy": a}
                         for (m, s), a in values.items()
                         for attack, eps in (("pgd", 0.2), ("fgsm", 0.25))])


def test_verdicts_count_seeds_and_the_contrary_claim_mirrors_the_paper():
    cfg = sgt_chapter.SaliencyGuidedConfig(seeds=(0, 1, 2))
    table = curves({("ST", 0): 0.1, ("ST", 1): 0.1, ("ST", 2): 0.5,
                    ("SGT k=0.3", 0): 0.4, ("SGT k=0.3", 1): 0.3, ("SGT k=0.3", 2): 0.2,
                    ("ASGT", 0): 0.9, ("ASGT", 1): 0.9, ("ASGT", 2): 0.9,
                    ("AT-FGSM", 0): 0.95, ("AT-FGSM", 1): 0.95, ("AT-FGSM", 2): 0.95,
                    ("SGA", 0): 0.1, ("SGA", 1): 0.1, ("SGA", 2): 0.1})
    v = sgt_chapter.claims(cfg, table).set_index("claim")["verdict"]
    assert v["SGT k=0.3 is more robust than ST (PGD, eps 0.2)"] == "partly"
    assert v["contrary: ST is more robust than SGT k=0.3 (PGD, eps 0.2)"] == "partly"
    assert v["ASGT is more robust than SGT (PGD, eps 0.2)"] == "reproduced"
    assert v["ASGT is more robust than AT-FGSM (PGD, eps 0.2)"] == "not reproduced"


def test_paper_numbers_table_puts_ours_beside_each_quoted_number():
    cfg = sgt_chapter.SaliencyGuidedConfig(seeds=(0, 1))
    table = curves({(m, s): 0.5 + 0.1 * s for m in ("ST", "SGT k=0.3", "SGT k=0.5", "ASGT",
                                                    "AT-FGSM", "SGA") for s in (0, 1)})
    numbers = sgt_chapter.numbers_table(cfg, table)
    assert len(numbers) == 8  # five PGD numbers at 0.2, three FGSM numbers at 0.25
    row = numbers[(numbers.attack == "PGD") & (numbers.method == "ASGT")].iloc[0]
    assert row["paper"] == 55.69 and abs(row["ours"] - 55.0) < 1e-9
    assert abs(row["ours - paper"] - (55.0 - 55.69)) < 1e-9


def test_the_faithfulness_claim_compares_random_minus_saliency_gaps_seed_by_seed():
    cfg = sgt_chapter.SaliencyGuidedConfig(seeds=(0, 1))
    table = curves({(m, s): 0.5 for m in ("ST", "SGT k=0.3", "SGT k=0.5", "ASGT", "AT-FGSM", "SGA")
                    for s in (0, 1)})
    # gaps at 50% removed: ST 10 and 10 points; SGT 30 in seed 0, 5 in seed 1
    accuracy = {("ST", 0, "random"): 0.4, ("ST", 0, "saliency"): 0.3,
                ("ST", 1, "random"): 0.4, ("ST", 1, "saliency"): 0.3,
                ("SGT k=0.3", 0, "random"): 0.8, ("SGT k=0.3", 0, "saliency"): 0.5,
                ("SGT k=0.3", 1, "random"): 0.8, ("SGT k=0.3", 1, "saliency"): 0.75}
    removal = pd.DataFrame([{"method": m, "seed": s, "ranking": r, "removed": d,
                             "accuracy": a if d == 0.5 else 0.9}
                            for (m, s, r), a in accuracy.items() for d in (0.0, 0.4, 0.5)])
    gap, at = sgt_chapter.faithfulness_gap(removal, "SGT k=0.3")
    assert at == 0.5 and gap.round(6).tolist() == [30.0, 5.0]
    row = sgt_chapter.claims(cfg, table, removal).iloc[-1]
    assert row["source"] == "ismail2021sgt" and row["verdict"] == "partly"
    assert row["seeds where it holds"] == "1 of 2" and abs(row["mean gap (points)"] - 7.5) < 1e-9
