"""Benchmarks: cost of each training method relative to standard training.

Timings on a shared 2-core machine are noisy, so every number is a ratio measured
side by side in one run (interleaved repeats, median and spread), next to the
method's pass-count floor: the forward+backward passes it must do per batch
relative to one standard step. Results go to benchmarks/results/ as JSON and a
markdown table. Never a test: nothing here passes or fails.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from robinterp import models, train
from robinterp.provenance import provenance

# (method, params, floor): PGD-k needs k attack passes plus the training pass;
# FGSM-AT one attack pass plus adversarial and clean training passes.
CASES = [
    ("standard", {}, 1.0),
    ("fgsm_at", {"eps": 0.3}, 3.0),
    ("pgd_at", {"eps": 0.3, "steps": 5}, 6.0),
]


def step_seconds(model, method, params, x, y, optimizer) -> float:
    start = time.perf_counter()
    loss, _ = train.get_method(method)(model, x, y, progress=1.0, **params)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - start


def main(repeats: int = 7, batch: int = 128) -> dict:
    torch.manual_seed(0)
    model = models.build("small_cnn", "mnist", num_classes=10, shape=(1, 28, 28), width=16)
    optimizer = torch.optim.Adam(model.parameters())
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    times = {m: [] for m, _, _ in CASES}
    for _ in range(2):  # warm-up
        for method, params, _ in CASES:
            step_seconds(model, method, params, x, y, optimizer)
    for _ in range(repeats):  # interleaved so drifts hit every method alike
        for method, params, _ in CASES:
            times[method].append(step_seconds(model, method, params, x, y, optimizer))
    base = statistics.median(times["standard"])
    rows = []
    for method, params, floor in CASES:
        ratios = [t / base for t in times[method]]
        rows.append({"method": method, "params": params, "floor": floor,
                     "ratio_median": statistics.median(ratios),
                     "ratio_spread": max(ratios) - min(ratios),
                     "ratio_over_floor": statistics.median(ratios) / floor,
                     "standard_ms_median": 1000 * base})
    return {"benchmark": "training_step_ratio", "model": "small_cnn width 16", "batch": batch,
            "repeats": repeats, "rows": rows, **provenance()}


if __name__ == "__main__":
    result = main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "training_step_ratio.json").write_text(json.dumps(result, indent=2, default=str))
    lines = ["| method | floor | ratio (median) | spread | ratio / floor |", "|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['floor']:.0f} | {r['ratio_median']:.2f} | "
              f"{r['ratio_spread']:.2f} | {r['ratio_over_floor']:.2f} |" for r in result["rows"]]
    header = (f"Training step cost relative to standard training ({result['model']}, batch "
              f"{result['batch']}, {result['repeats']} interleaved repeats, {result['hardware']}, "
              f"commit {result['commit']}; standard step {result['rows'][0]['standard_ms_median']:.0f} ms)\n\n")
    (out / "training_step_ratio.md").write_text(header + "\n".join(lines) + "\n")
    print(header + "\n".join(lines))
