"""The papers' own numbers, each with its citation key and where in the paper it stands.

The one place a paper's number is typed in; chapters read it from here and put
it beside the measured value.
"""

from __future__ import annotations

import pandas as pd

PAPER_NUMBERS: dict[str, dict[str, object]] = {
    "madry_mnist_clean": {
        "cite": "madry2018pgd", "where": "Table 1, MNIST, natural test images",
        "value": 98.8, "unit": "% accuracy",
        "setting": "PGD-trained 2-conv net (32/64 filters, FC 1024), 100k iterations, "
                   "training PGD-40 at eps 0.3"},
    "madry_mnist_pgd40_eps0.3": {
        "cite": "madry2018pgd", "where": "Table 1, MNIST, white-box PGD 40 steps, 1 restart",
        "value": 93.2, "unit": "% accuracy",
        "setting": "same model, Linf eps 0.3"},
}


def paper_number(key: str) -> dict[str, object]:
    return PAPER_NUMBERS[key]


def table(keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{"key": k, **PAPER_NUMBERS[k]} for k in keys])
