"""Benchmarks: ratios measured side by side, never pass/fail.

    python benchmarks/run.py                      # training, attacks, quantus, attributions, early_stop, precision
    python benchmarks/run.py early_stop           # one of them
    python benchmarks/run.py --device cuda        # on the GPU (default auto: CUDA when torch sees one)
    python benchmarks/run.py book                 # make book twice: cold (as found) and warm
    python benchmarks/run.py estimate             # --check's estimate of long-profile runs against the runs
    python benchmarks/run.py roofline             # the default CNN's training step against the matmul peak
    python benchmarks/run.py pool                 # the book's max-pool against torch's, in the same steps

Timings on a shared 2-core machine are noisy, so every comparison is a ratio of
cases timed in one run, interleaved (so a drift in machine load hits every case
alike), repeated, and reported as median and spread. On a GPU every timed call
ends with torch.cuda.synchronize(), so a time covers the kernels it launched. Results go
to benchmarks/results/<name>.json (with provenance: commit, hardware, versions) and
<name>.md, or under benchmarks/results/cuda/ for the GPU. Nothing here is a test.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from robinterp import RobinterpError, attacks, explain, models, robustness, train
from robinterp import device as devices
from robinterp.attacks import AttackSpec
from robinterp.methods import get_method
from robinterp.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def finish() -> None:
    """Wait for the GPU's queued kernels (a CUDA call returns once they are launched)."""
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()


def interleaved(cases: dict[str, Callable[[], object]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each case, the cases run in turn ``repeats`` times."""
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            finish()
            start = time.perf_counter()
            fn()
            finish()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_stats(times: list[float], base: list[float]) -> dict[str, float]:
    """Median and spread (min..max) of per-repeat ratios against a base case."""
    ratios = [t / b for t, b in zip(times, base)]
    return {"ratio_median": statistics.median(ratios), "ratio_min": min(ratios), "ratio_max": max(ratios)}


def ratio_text(row: dict) -> str:
    return f"{row['ratio_median']:.2f} ({row['ratio_min']:.2f}..{row['ratio_max']:.2f})"


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def small_cnn(device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=16).to(device)


def trained_small_cnn(device: torch.device) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """A standard small_cnn from the book's cache (trained once, ~10 s on 2 cores) and 500 test
    images on ``device``."""
    from robinterp import data

    spec = train.TrainSpec(
        dataset="mnist",
        train_size=10000,
        model="small_cnn",
        width=16,
        method="standard",
        epochs=1,
        seed=0,
        device=device.type,
    )
    model, _ = train.trained_model(spec)
    test = data.load("mnist", "test").subset(500, seed=12345)
    return model.eval(), test.images.to(device), test.labels.to(device)


def where(device: torch.device) -> str:
    """The device in a table's header."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "this machine's CPU"


# --- 1. training-step cost against the pass-count floor ------------------------------
# floor: forward+backward passes a method must make per batch, in units of one standard
# step (1 forward + 1 backward). An attack step or a saliency map is one pass; each
# extra training input is one more. SGT: saliency + (x, masked x); SGA: saliency +
# FGSM on masked x + (x, attacked x); ASGT: FGSM + saliency + (x, x', masked x').
TRAINING_CASES = [
    ("standard", {}, 1.0),
    ("fgsm_at", {"eps": 0.3, "clean_weight": 0.5}, 3.0),
    ("fgsm_at", {"eps": 0.3, "clean_weight": 0.0}, 2.0),
    ("pgd_at", {"eps": 0.3, "steps": 5}, 6.0),
    ("sgt", {"k": 0.3}, 3.0),
    ("sga", {"k": 0.3, "eps": 0.3, "steps": 1}, 4.0),
    ("asgt", {"k": 0.3, "eps": 0.3, "steps": 1}, 5.0),
]


def training(device: torch.device, repeats: int = 7, batch: int = 128) -> tuple[dict, str]:
    model = small_cnn(device)
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.rand(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)

    def step(method: str, params: dict) -> Callable[[], None]:
        def run() -> None:
            loss, _ = get_method(method)(model, x, y, progress=1.0, **params)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return run

    labels = [f"{m} {p}" if p else m for m, p, _ in TRAINING_CASES]
    times = interleaved({label: step(m, p) for label, (m, p, _) in zip(labels, TRAINING_CASES)}, repeats, warmup=2)
    rows = []
    for label, (_method, _params, floor) in zip(labels, TRAINING_CASES):
        stats = ratio_stats(times[label], times["standard"])
        rows.append({"case": label, "floor": floor, **stats, "over_floor": stats["ratio_median"] / floor})
    base_ms = 1000 * statistics.median(times["standard"])
    table = markdown_table(
        ["method", "floor", "ratio to standard (median, min..max)", "ratio / floor"],
        [[r["case"], f"{r['floor']:.0f}", ratio_text(r), f"{r['over_floor']:.2f}"] for r in rows],
    )
    header = (
        f"Training step cost relative to one standard step on {where(device)} (small_cnn width 16, batch {batch}, "
        f"{repeats} interleaved repeats; standard step {base_ms:.0f} ms median). Goal: "
        f"ratio / floor <= 1.15."
    )
    return {"rows": rows, "batch": batch, "repeats": repeats, "standard_ms": base_ms}, header + "\n\n" + table


# --- 2. attacks against torchattacks ---------------------------------------------------
def attack_pairs(model: torch.nn.Module, eps: float, steps: int) -> dict[str, tuple[Callable, Callable]]:
    """(robinterp, torchattacks) callables x, y -> x_adv with the same settings."""
    import torchattacks

    alpha_pgd, alpha_mi = 2.5 * eps / steps, eps / steps
    return {
        "FGSM": (lambda x, y: attacks.fgsm(model, x, y, eps=eps), torchattacks.FGSM(model, eps=eps)),
        "PGD Linf, no random start": (
            lambda x, y: attacks.pgd(model, x, y, eps=eps, steps=steps, random_start=False),
            torchattacks.PGD(model, eps=eps, alpha=alpha_pgd, steps=steps, random_start=False),
        ),
        "PGD Linf, random start": (
            lambda x, y: attacks.pgd(model, x, y, eps=eps, steps=steps, seed=0),
            torchattacks.PGD(model, eps=eps, alpha=alpha_pgd, steps=steps, random_start=True),
        ),
        "PGD L2, random start": (
            lambda x, y: attacks.pgd(model, x, y, eps=2.0, norm="l2", steps=steps, seed=0),
            torchattacks.PGDL2(model, eps=2.0, alpha=2.5 * 2.0 / steps, steps=steps, random_start=True),
        ),
        "MI-FGSM": (
            lambda x, y: attacks.mifgsm(model, x, y, eps=eps, steps=steps),
            torchattacks.MIFGSM(model, eps=eps, alpha=alpha_mi, steps=steps, decay=1.0),
        ),
    }


def attacks_vs_torchattacks(
    device: torch.device, repeats: int = 5, eps: float = 0.2, steps: int = 10
) -> tuple[dict, str]:
    try:
        import torchattacks  # noqa: F401  (installed for benchmarks only)
    except ImportError:
        raise SystemExit("torchattacks is not installed: pip install -r benchmarks/requirements.txt") from None
    model, x, y = trained_small_cnn(device)
    rows = []
    for name, (ours, theirs) in attack_pairs(model, eps, steps).items():
        times = interleaved(
            {"robinterp": functools.partial(ours, x, y), "torchattacks": functools.partial(theirs, x, y)}, repeats
        )
        torch.manual_seed(0)
        adv_ours, adv_theirs = ours(x, y), theirs(x, y)
        pred_ours, pred_theirs = models.predict(model, adv_ours), models.predict(model, adv_theirs)
        rows.append(
            {
                "attack": name,
                **ratio_stats(times["robinterp"], times["torchattacks"]),
                "robust_acc_robinterp": float((pred_ours == y).float().mean()),
                "robust_acc_torchattacks": float((pred_theirs == y).float().mean()),
                "same_prediction": float((pred_ours == pred_theirs).float().mean()),
                "max_abs_diff": float((adv_ours - adv_theirs).abs().max()),
            }
        )
    table = markdown_table(
        [
            "attack",
            "time robinterp / torchattacks (median, min..max)",
            "robust acc. robinterp",
            "robust acc. torchattacks",
            "same prediction",
            "max abs. pixel diff.",
        ],
        [
            [
                r["attack"],
                ratio_text(r),
                f"{100 * r['robust_acc_robinterp']:.1f}%",
                f"{100 * r['robust_acc_torchattacks']:.1f}%",
                f"{100 * r['same_prediction']:.1f}%",
                f"{r['max_abs_diff']:.2g}",
            ]
            for r in rows
        ],
    )
    header = (
        f"robinterp's attacks against torchattacks on {where(device)}, a standard small_cnn (width 16, 1 epoch on "
        f"10k MNIST images), {len(x)} test images, Linf eps {eps} (L2 eps 2.0), {steps} steps, "
        f"{repeats} interleaved repeats. Goal: ratio <= 1. Random starts draw from different "
        f"generators, so only robust accuracy is comparable there; robust accuracy here counts "
        f"adversarial predictions alone (clean mistakes included)."
    )
    return {"rows": rows, "eps": eps, "steps": steps, "n": len(x)}, header + "\n\n" + table


# --- 5. captum attributions: internal batching -----------------------------------------
def attributions(device: torch.device, repeats: int = 5, n: int = 128) -> tuple[dict, str]:
    model, x, y = trained_small_cnn(device)
    x, y = x[:n], y[:n]
    cases = {
        f"IG internal_batch_size={b}": (
            lambda b=b: explain.integrated_gradients(
                model, x.clone().requires_grad_(True), y, n_steps=50, internal_batch_size=b
            )
        )
        for b in (None, 4096, 512, 128)
    }
    cases.update(
        {
            "GradientSHAP n_samples=20": lambda: explain.gradient_shap(model, x.clone(), y),
            "Saliency": lambda: explain.saliency(model, x.clone().requires_grad_(True), y),
        }
    )
    times = interleaved(cases, repeats)
    base = times["IG internal_batch_size=None"]
    reference = explain.integrated_gradients(model, x.clone(), y, n_steps=50, internal_batch_size=None)
    rows = []
    for name in cases:
        row = {
            "case": name,
            **ratio_stats(times[name], base),
            "ms_per_image_median": 1000 * statistics.median(times[name]) / n,
        }
        if name.startswith("IG internal"):
            size = name.split("=")[1]
            ig = explain.integrated_gradients(
                model, x.clone(), y, n_steps=50, internal_batch_size=None if size == "None" else int(size)
            )
            row["max_abs_diff_to_unbatched"] = float((ig - reference).abs().max())
        rows.append(row)
    table = markdown_table(
        ["case", "time / IG unbatched (median, min..max)", "ms per image", "max diff. to unbatched IG"],
        [
            [
                r["case"],
                ratio_text(r),
                f"{r['ms_per_image_median']:.2f}",
                f"{r.get('max_abs_diff_to_unbatched', float('nan')):.2g}",
            ]
            for r in rows
        ],
    )
    header = (
        f"captum attributions on {where(device)}, {n} MNIST test images (small_cnn width 16), IG with 50 steps "
        f"(n x 50 = {n * 50} model inputs), {repeats} interleaved repeats."
    )
    return {"rows": rows, "n": n}, header + "\n\n" + table


# --- 3. the seven Quantus metrics: the docs' way against robinterp's path ---------------
def quantus_metrics(device: torch.device, repeats: int = 3, n: int = 32, samples: int = 5) -> tuple[dict, str]:
    """(a) as the Quantus docs show it: per metric, quantus.explain for IG, a_batch from it,
    quantus.explain as explain_func; (b) robinterp.explanation_quality.scores with its own
    batched implementation, the same metric settings and the same IG rule (10 steps,
    trapezoid), so that scores must agree. Per metric, and for all seven at once as a
    chapter calls them (one scores call against the seven docs'-way calls)."""
    import warnings

    import numpy as np
    import quantus

    from robinterp import explanation_quality as eq

    model, x, y = trained_small_cnn(device)
    x, y = x[:n], y[:n]
    x_np, y_np = x.cpu().numpy(), y.cpu().numpy()
    ig = {"n_steps": 10, "method": "riemann_trapezoid"}  # what quantus.explain hard-codes
    n_features = 28 * 28

    def docs_way(name: str) -> np.ndarray:
        spec = eq.get_metric(name)
        metric = getattr(quantus, spec.quantus_name)(
            disable_warnings=True, display_progressbar=False, **spec.settings(samples, n_features, None)
        )
        a_batch = quantus.explain(model, x_np, y_np, method="IntegratedGradients", device=str(device))
        np.random.seed(0)
        return np.asarray(
            metric(
                model=model,
                x_batch=x_np,
                y_batch=y_np,
                a_batch=a_batch,
                device=str(device),
                explain_func=quantus.explain,
                explain_func_kwargs={"method": "IntegratedGradients"},
            )
        )

    def ours(names: tuple[str, ...]) -> dict[str, np.ndarray]:
        table = eq.scores(model, x, y, names, explainer_options=ig, samples=samples, seed=0, implementation="robinterp")
        return {name: table[table.metric == name].score.to_numpy() for name in names}

    def differences(docs: np.ndarray, robinterp: np.ndarray) -> dict[str, float]:
        both = np.isfinite(docs) & np.isfinite(robinterp)
        return {
            "max_abs_score_diff": float(np.abs(docs - robinterp)[both].max()),
            "nan_positions_differ": int((np.isnan(docs) != np.isnan(robinterp)).sum()),
        }

    warnings.filterwarnings("ignore", message=".*didn't cause change in input.*")
    rows = []
    for name in eq.SEVEN:
        times = interleaved(
            {"docs": functools.partial(docs_way, name), "robinterp": functools.partial(ours, (name,))}, repeats
        )
        rows.append(
            {
                "metric": name,
                **ratio_stats(times["robinterp"], times["docs"]),
                "docs_seconds_median": statistics.median(times["docs"]),
                "robinterp_seconds_median": statistics.median(times["robinterp"]),
                **differences(docs_way(name), ours((name,))[name]),
            }
        )
    suite = tuple(eq.SEVEN)
    times = interleaved({"docs": lambda: [docs_way(name) for name in suite], "robinterp": lambda: ours(suite)}, repeats)
    together = ours(suite)
    rows.append(
        {
            "metric": "all seven (one scores call)",
            **ratio_stats(times["robinterp"], times["docs"]),
            "docs_seconds_median": statistics.median(times["docs"]),
            "robinterp_seconds_median": statistics.median(times["robinterp"]),
            **differences(
                np.concatenate([docs_way(name) for name in suite]), np.concatenate([together[name] for name in suite])
            ),
        }
    )
    table = markdown_table(
        [
            "metric",
            "time robinterp / docs' way (median, min..max)",
            "speed-up (median)",
            "docs' way (s)",
            "robinterp (s)",
            "max abs. score diff.",
            "NaN positions differ",
        ],
        [
            [
                r["metric"],
                ratio_text(r),
                f"{1 / r['ratio_median']:.1f}x",
                f"{r['docs_seconds_median']:.2f}",
                f"{r['robinterp_seconds_median']:.2f}",
                f"{r['max_abs_score_diff']:.2g}",
                str(r["nan_positions_differ"]),
            ]
            for r in rows
        ],
    )
    header = (
        f"Quantus 0.6 metrics on {where(device)}, {n} MNIST test images (small_cnn width 16), IG with 10 trapezoid "
        f"steps, {samples} samples/runs per metric, {repeats} interleaved repeats. (a) the docs' way: "
        f"per metric, quantus.explain for a_batch and as explain_func; (b) "
        f'robinterp.explanation_quality.scores(implementation="robinterp"). Goal: robinterp\'s '
        f"path at least 5x faster with equal scores."
    )
    return {"rows": rows, "n": n, "samples": samples}, header + "\n\n" + table


# --- 6. robust-accuracy sweeps: early stop against the last iterate -----------------------
def early_stop(device: torch.device, repeats: int = 3, n: int = 500) -> tuple[dict, str]:
    """The robust_models chapter's sweep as its defaults set it (its radii, radius 0 included;
    FGSM, PGD and MI-FGSM with its step counts) on a standard and a PGD-trained model, counted
    at the attack's first misclassified iterate (``early_stop=True``, the evaluation default)
    and at its last (the former default), timed interleaved in one run; per model, one row per
    attack and one for the three in turn (per repeat, the sum of their times). Robust accuracy
    must be equal or lower with early stop."""
    from robinterp.configs.robust_models import RobustModelsConfig
    from robinterp.experiments import common

    chapter = RobustModelsConfig()
    epsilons, bound = chapter.epsilons, common.evaluation_attacks(chapter)
    standard, images, labels = trained_small_cnn(device)
    robust_spec = train.TrainSpec(
        dataset="mnist",
        train_size=10000,
        model="small_cnn",
        width=16,
        method="pgd_at",
        method_params=(("eps_warmup", 0.25), ("steps", 5)),
        epochs=2,
        seed=0,
        device=device.type,
    )
    trained = {"standard": standard, "PGD-AT": train.trained_model(robust_spec)[0].eval()}
    images, labels = images[:n], labels[:n]
    rows = []
    for model_name, model in trained.items():
        per_attack = []
        for attack in bound:
            tables: dict[bool, pd.DataFrame] = {}  # each mode's table, from its last timed run

            def sweep(
                stop: bool,
                model: torch.nn.Module = model,
                attack: AttackSpec = attack,
                tables: dict[bool, pd.DataFrame] = tables,
            ) -> None:
                # seeded (robust_accuracy's seed=0): every run of a mode gives the same table
                tables[stop] = robustness.robust_accuracy(
                    model, images, labels, attacks=(attack,), epsilons=epsilons, early_stop=stop
                )

            times = interleaved(
                {"early": functools.partial(sweep, True), "last": functools.partial(sweep, False)}, repeats
            )
            early, last = tables[True], tables[False]
            per_attack.append((times, early, last))
            rows.append(early_stop_row(model_name, attack.name, times, early, last))
        summed = {
            mode: [sum(t) for t in zip(*(times[mode] for times, _, _ in per_attack))] for mode in ("early", "last")
        }
        both = [pd.concat([run[i] for run in per_attack]) for i in (1, 2)]
        rows.append(early_stop_row(model_name, "all three", summed, *both))
    table = markdown_table(
        [
            "model",
            "attack",
            "time early / last (median, min..max)",
            "speed-up (median)",
            "last (s)",
            "early (s)",
            "robust acc. last iterate (%)",
            "robust acc. early stop (%)",
            "never higher",
        ],
        [
            [
                r["model"],
                r["attack"],
                ratio_text(r),
                f"{1 / r['ratio_median']:.1f}x",
                f"{r['last_seconds_median']:.2f}",
                f"{r['early_seconds_median']:.2f}",
                " / ".join(f"{100 * a:.1f}" for a in r["accuracy_last"]) if r["attack"] != "all three" else "",
                " / ".join(f"{100 * a:.1f}" for a in r["accuracy_early"]) if r["attack"] != "all three" else "",
                "yes" if r["never_higher"] else "**no**",
            ]
            for r in rows
        ],
    )
    attacks_text = ", ".join(
        f"{spec.name}" + "".join(f" {key} {value}" for key, value in spec.options) for spec in bound
    )
    header = (
        f"Robust-accuracy sweeps on {where(device)}, {n} MNIST test images, the robust_models chapter's "
        f"defaults: Linf radii {', '.join(map(str, epsilons))} (accuracies in that order), attacks "
        f"{attacks_text}; small_cnn width 16 trained on 10k images (standard: 1 epoch; PGD-AT: 2 "
        f"epochs, 5 steps), {repeats} interleaved repeats. Last: every image takes every step at every "
        f"radius, only the last iterate counts. Early: an image leaves the attack at its first "
        f"misclassified iterate; images wrong when clean and images broken at a smaller radius are not "
        f"attacked; radius 0 is the clean prediction in both modes. Goal: robust accuracy never higher with "
        f"early stop, time at least 2x lower on the standard model."
    )
    return {"rows": rows, "n": n, "epsilons": list(epsilons)}, header + "\n\n" + table


def early_stop_row(
    model: str, attack: str, times: dict[str, list[float]], early: pd.DataFrame, last: pd.DataFrame
) -> dict:
    """One row of the early-stop table: the time ratio per repeat and both sweeps' accuracies."""
    return {
        "model": model,
        "attack": attack,
        **ratio_stats(times["early"], times["last"]),
        "last_seconds_median": statistics.median(times["last"]),
        "early_seconds_median": statistics.median(times["early"]),
        "accuracy_last": last.accuracy.tolist(),
        "accuracy_early": early.accuracy.tolist(),
        "never_higher": bool((early.correct.to_numpy() <= last.correct.to_numpy()).all()),
    }


# --- 7. training arithmetic: bfloat16 autocast and torch.compile against float32 eager ------
def precision(device: torch.device, repeats: int = 7, batch: int = 128) -> tuple[dict, str]:
    """One training step (forward, backward, Adam) of standard training and of PGD-AT (5 steps),
    as ``train.fit`` takes it: float32 eager, bfloat16 autocast, and float32 through
    ``torch.compile`` (compiled during the warm-up, which is not timed)."""
    x, y = torch.rand(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
    cases = {}
    for method, params in (("standard", {}), ("pgd_at", {"eps": 0.3, "steps": 5})):
        for arithmetic in ("float32", "bfloat16", "compiled"):
            model = small_cnn(device)
            forward = torch.compile(model) if arithmetic == "compiled" else model
            optimizer = torch.optim.Adam(model.parameters())
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=arithmetic == "bfloat16")

            def step(method=method, params=params, forward=forward, optimizer=optimizer, autocast=autocast):
                with autocast:
                    loss, _ = get_method(method)(forward, x, y, progress=1.0, **params)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            cases[f"{method} {arithmetic}"] = step
    start = time.perf_counter()
    times = interleaved(cases, repeats, warmup=3)
    rows = []
    for name in cases:
        method = name.split()[0]
        rows.append(
            {
                "case": name,
                **ratio_stats(times[name], times[f"{method} float32"]),
                "ms_median": 1000 * statistics.median(times[name]),
            }
        )
    table = markdown_table(
        ["case", "time / float32 eager (median, min..max)", "ms per step (median)"],
        [[r["case"], ratio_text(r), f"{r['ms_median']:.0f}"] for r in rows],
    )
    header = (
        f"One training step (small_cnn width 16, batch {batch}) on {where(device)}, {repeats} interleaved "
        f"repeats after 3 untimed warm-ups (torch.compile compiles there; the whole run took "
        f"{time.perf_counter() - start:.0f} s). bfloat16: torch.autocast on the {device.type.upper()}. Goal: say when each "
        f"switch helps; below 1 is faster."
    )
    return {"rows": rows, "batch": batch, "repeats": repeats}, header + "\n\n" + table


# --- 4. the book, cold and warm ----------------------------------------------------------
def book(device: torch.device) -> tuple[dict, str]:
    """``make book`` twice: as the cache is found (cold on a fresh clone), then warm. Its chapters
    choose their device themselves (``device: auto``), so ``device`` only names the results' folder."""
    import nbformat

    executed = REPO / "_build" / "executed" / "default"
    runs = []
    for label in ("first (cold on a fresh clone)", "second (warm)"):
        before = {path: path.stat().st_mtime_ns for path in executed.glob("*.ipynb")}
        start = time.perf_counter()
        result = subprocess.run(["make", "book"], cwd=REPO, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"make book failed ({label}):\n{result.stderr[-2000:]}")
        chapters = {}
        for path in sorted(executed.glob("*.ipynb")):
            if before.get(path) == path.stat().st_mtime_ns:  # kept: unchanged since it last ran
                chapters[path.stem] = None
                continue
            meta = nbformat.read(path, as_version=4).metadata.get("papermill", {})
            chapters[path.stem] = meta.get("duration")
        runs.append({"run": label, "make_book_seconds": seconds, "chapter_seconds": chapters})
    names = sorted(runs[0]["chapter_seconds"])
    table = markdown_table(
        ["run", "make book (min)"] + [f"{n} (min)" for n in names],
        [
            [r["run"], f"{r['make_book_seconds'] / 60:.1f}"]
            + ["kept" if r["chapter_seconds"].get(n) is None else f"{r['chapter_seconds'][n] / 60:.1f}" for n in names]
            for r in runs
        ],
    )
    header = (
        "`make book` under the default profile, run twice in a row; chapter times are "
        "papermill's execution time of each notebook, or kept when `robinterp book` kept it "
        "unchanged since it last ran. Goal: the first run within 60 minutes on 2 cores, the "
        "second within 2."
    )
    return {"runs": runs}, header + "\n\n" + table


ESTIMATED = ("robust_models", "saliency_guided_training", "scaat")
"""The chapters whose run under the long profile ``estimate`` times: the cheapest three."""
LADDERS = ("robust_models",)
"""The chapters whose ladder under the long profile ``estimate`` times (after their runs: the
ladder's first rung is the run)."""


def estimate(device: torch.device) -> tuple[dict, str]:
    """Each of ``ESTIMATED`` under the long profile, then each of ``LADDERS``' ladder: what
    ``robinterp run CHAPTER --profile long --check`` (``ladder ... --check``) estimates from the
    build's earlier runs (after ``make book``, the default profile's), then the command itself,
    timed, as the build and cache are found. ``device`` names the results' folder only."""
    from robinterp import estimate as estimates
    from robinterp import profiles

    rungs = profiles.ladder_rungs("long")
    commands = [("run", chapter, ()) for chapter in ESTIMATED] + [("ladder", chapter, rungs) for chapter in LADDERS]
    rows = []
    for command, chapter, factors in commands:
        predicted = estimates.run_estimate(chapter, "long", rungs=factors or (1.0,))
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "robinterp", command, chapter, "--profile", "long"],
            cwd=REPO,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"robinterp {command} {chapter} --profile long failed:\n{result.stderr[-2000:]}")
        rows.append(
            {
                "command": f"robinterp {command} {chapter} --profile long",
                "estimated_minutes": predicted.minutes,
                "measured_minutes": seconds / 60,
                "models": predicted.models,
                "to_train": predicted.models - predicted.cached,
                "continued": predicted.continued,
                "unmeasured": sorted(predicted.unmeasured),
                "approximate": sorted(predicted.approximate),
            }
        )
    table = markdown_table(
        ["command", "models to train (of; continued)", "estimated (min)", "measured (min)", "estimated / measured"],
        [
            [
                f"`{r['command']}`",
                f"{r['to_train']} ({r['models']}; {r['continued']})",
                f"{r['estimated_minutes']:.1f}",
                f"{r['measured_minutes']:.1f}",
                f"{r['estimated_minutes'] / r['measured_minutes']:.2f}",
            ]
            for r in rows
        ],
    )
    header = (
        "What `--check` estimates for a command under the long profile (from the costs the build's "
        "earlier runs recorded on this machine: after `make book`, the default profile's), against the "
        "command's whole wall time, timed right after the estimate, in the order shown. Goal: within 30%."
    )
    return {"rows": rows}, header + "\n\n" + table


def roofline(device: torch.device, repeats: int = 9) -> tuple[dict, str]:
    """The book's training step (small_cnn width 16, batch 128, standard training with Adam) in
    FLOP/s against this machine's float32 matrix-multiply peak at the book's threads (issue 32:
    at least half of it, or the measured reason why not and the best reached). FLOPs are counted
    by torch's FlopCounterMode (matmuls and convolutions, forward and backward); the peak is the
    best of square ``torch.mm`` sizes. Variants the book does not use (its numbers would change:
    another memory layout or batch reorders the sums) show what the step could reach, and a
    profile of the book's step shows where its time goes."""
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode

    sizes = (512, 1024, 2048)
    matrices = {n: (torch.rand(n, n, device=device), torch.rand(n, n, device=device)) for n in sizes}
    products = interleaved({f"mm {n}": functools.partial(torch.mm, *matrices[n]) for n in sizes}, repeats, warmup=2)
    peak_by_size = {n: 2 * n**3 / statistics.median(products[f"mm {n}"]) for n in sizes}
    peak = max(peak_by_size.values())

    def step(batch: int, channels_last: bool = False) -> tuple[Callable[[], None], int]:
        model = small_cnn(device)
        x = torch.rand(batch, 1, 28, 28, device=device)
        if channels_last:
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=device)
        optimizer = torch.optim.Adam(model.parameters())

        def run() -> None:
            loss, _ = get_method("standard")(model, x, y, progress=1.0)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        with FlopCounterMode(display=False) as counter:
            run()
        return run, counter.get_total_flops()

    book_case = "batch 128 (the book's step)"
    cases = {
        book_case: step(128),
        "batch 128, channels_last": step(128, channels_last=True),
        "batch 512": step(512),
        "batch 2048": step(2048),
    }
    times = interleaved({name: run for name, (run, _) in cases.items()}, repeats, warmup=3)
    rows = []
    for name, (_run, flops) in cases.items():
        seconds = statistics.median(times[name])
        rows.append(
            {
                "case": name,
                "gflop_per_step": flops / 1e9,
                "ms": 1000 * seconds,
                "gflops": flops / seconds / 1e9,
                "of_peak": flops / seconds / peak,
            }
        )
    run, flops = cases[book_case]
    with FlopCounterMode(display=False) as counter:
        run()
    by_op = {str(op): count for op, count in counter.get_flop_counts()["Global"].items()}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            run()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:10]
    profile_rows = [
        {"op": e.key, "share": e.self_cpu_time_total / total, "ms_per_step": e.self_cpu_time_total / 1000 / repeats}
        for e in top
    ]
    table = markdown_table(
        ["step", "GFLOP per step", "ms (median)", "GFLOP/s", "of the peak"],
        [
            [r["case"], f"{r['gflop_per_step']:.2f}", f"{r['ms']:.1f}", f"{r['gflops']:.0f}", f"{r['of_peak']:.0%}"]
            for r in rows
        ],
    )
    ops = markdown_table(
        ["op (self time)", "share of the step", "ms per step"],
        [[f"`{r['op']}`", f"{r['share']:.0%}", f"{r['ms_per_step']:.1f}"] for r in profile_rows],
    )
    counted = markdown_table(
        ["op (FLOPs)", "GFLOP per step", "share"],
        [[f"`{op}`", f"{n / 1e9:.3f}", f"{n / flops:.0%}"] for op, n in sorted(by_op.items(), key=lambda kv: -kv[1])],
    )
    threads = torch.get_num_threads() if device.type == "cpu" else None
    header = (
        f"The book's training step against the float32 matrix-multiply peak on {where(device)}"
        + (f" with {threads} threads" if threads else "")
        + f": peak {peak / 1e9:.0f} GFLOP/s (best of torch.mm at "
        + ", ".join(f"{n}: {v / 1e9:.0f}" for n, v in peak_by_size.items())
        + f"; {repeats} interleaved repeats). Goal (issue 32): the book's step at 50% of the peak or more."
    )
    result = {
        "peak_gflops": peak / 1e9,
        "peak_by_size": {n: v / 1e9 for n, v in peak_by_size.items()},
        "threads": threads,
        "rows": rows,
        "profile": profile_rows,
        "flops_by_op": by_op,
    }
    markdown = (
        f"{header}\n\n{table}\n\nWhere the book's step spends its time (torch.profiler, self time of the top "
        f"operators over {repeats} steps):\n\n{ops}\n\nWhere its FLOPs are (FlopCounterMode):\n\n{counted}"
    )
    return result, markdown


POOL_STEPS = [
    ("standard", {}),
    ("pgd_at", {"eps": 0.3, "steps": 5}),
    ("input_grad_reg", {"lam": 0.5}),
]


def pool(device: torch.device, repeats: int = 9, batch: int = 128) -> tuple[dict, str]:
    """The book's small CNN (width 16) with ``robinterp.models.MaxPool2d`` against the same net with
    torch's ``nn.MaxPool2d``: training steps (standard, PGD-AT with 5 steps, input-gradient
    regularisation with its double backward; Adam), the forward pass of an evaluation batch, and
    one attack step (a gradient with respect to the input). Both nets take the same steps on the
    same batch, so their weights must come out equal, which is checked."""
    x, y = torch.rand(batch, 1, 28, 28, device=device), torch.randint(0, 10, (batch,), device=device)
    x_eval = torch.rand(models.EVAL_BATCH_SIZE, 1, 28, 28, device=device)
    cases: dict[str, Callable[[], object]] = {}
    nets: dict[str, tuple[torch.nn.Module, torch.nn.Module]] = {}
    for method, params in POOL_STEPS:
        ours = small_cnn(device)
        pair = (ours, models.with_torch_pools(ours))
        nets[method] = pair
        for which, model in zip(("robinterp", "torch"), pair):
            optimizer = torch.optim.Adam(model.parameters())
            calls = itertools.count()

            def step(model=model, optimizer=optimizer, method=method, params=params, calls=calls) -> None:
                torch.manual_seed(next(calls))  # PGD's random starts: the same for both nets, call by call
                loss, _ = get_method(method)(model, x, y, progress=1.0, **params)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

            cases[f"train {method} | {which}"] = step
    ours = small_cnn(device).eval()
    for which, model in zip(("robinterp", "torch"), (ours, models.with_torch_pools(ours))):

        def forward(model=model) -> None:
            with torch.inference_mode():
                model(x_eval)

        def attack_step(model=model) -> None:
            xin = x.clone().requires_grad_(True)
            torch.autograd.grad(torch.nn.functional.cross_entropy(model(xin), y, reduction="sum"), xin)

        cases[f"evaluation forward, batch {models.EVAL_BATCH_SIZE} | {which}"] = forward
        cases[f"attack step, batch {batch} | {which}"] = attack_step
    times = interleaved(cases, repeats, warmup=2)
    equal = {
        method: all(torch.equal(a, b) for a, b in zip(ours.parameters(), torchs.parameters()))
        for method, (ours, torchs) in nets.items()
    }
    rows = []
    for name in cases:
        what, which = name.split(" | ")
        if which != "robinterp":
            continue
        base = times[f"{what} | torch"]
        rows.append(
            {
                "case": what,
                **ratio_stats(times[name], base),
                "torch_ms": 1000 * statistics.median(base),
                "ms": 1000 * statistics.median(times[name]),
                "weights_equal": equal.get(what.removeprefix("train ")),
            }
        )
    table = markdown_table(
        ["case", "time with robinterp's pool / torch's (median, min..max)", "ms: torch's, robinterp's", "same weights"],
        [
            [
                r["case"],
                ratio_text(r),
                f"{r['torch_ms']:.1f}, {r['ms']:.1f}",
                "" if r["weights_equal"] is None else ("yes" if r["weights_equal"] else "NO"),
            ]
            for r in rows
        ],
    )
    header = (
        f"The book's small CNN (width 16, batch {batch}) on {where(device)} with `robinterp.models.MaxPool2d` "
        f"against torch's `nn.MaxPool2d`, {repeats} interleaved repeats after 2 untimed warm-ups; below 1 is "
        f"faster. Training steps use Adam; after the run the two nets' weights are compared."
    )
    return {"rows": rows, "batch": batch, "repeats": repeats}, header + "\n\n" + table


BENCHMARKS: dict[str, Callable[[torch.device], tuple[dict, str]]] = {
    "training": training,
    "attacks": attacks_vs_torchattacks,
    "quantus": quantus_metrics,
    "attributions": attributions,
    "early_stop": early_stop,
    "precision": precision,
    "book": book,
    "estimate": estimate,
    "roofline": roofline,
    "pool": pool,
}
DEFAULT = ("training", "attacks", "quantus", "attributions", "early_stop", "precision")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="benchmark", help=f"any of {', '.join(BENCHMARKS)}")
    parser.add_argument("--device", default="auto", choices=devices.DEVICES, help="auto: CUDA when torch sees a GPU")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        raise SystemExit(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    try:
        device = torch.device(devices.resolve(args.device))
    except RobinterpError as err:
        raise SystemExit(str(err)) from None
    results = RESULTS if device.type == "cpu" else RESULTS / device.type
    results.mkdir(exist_ok=True)
    for name in args.names or DEFAULT:
        print(f"benchmark {name} on {device} ...", flush=True)
        result, markdown = BENCHMARKS[name](device)
        info = provenance()
        record = {"benchmark": name, "device": str(device), **result, **info}
        (results / f"{name}.json").write_text(json.dumps(record, indent=2, default=str))
        footer = f"\n\n{info['hardware']}, commit {info['commit']}, {info['utc']}\n"
        (results / f"{name}.md").write_text(markdown + footer)
        print(markdown + footer, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
