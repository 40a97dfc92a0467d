"""The multi-panel figures fit a book page: at the inline backend's 100 dpi, cropped as it crops
them, none is much wider than the page's text column (``plots.PAGE_WIDTH``), which would shrink
its fonts with it; their panels wrap into rows instead."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from robinterp import plots

matplotlib.use("Agg")
RNG = np.random.default_rng(0)
METHODS = ["standard", "FGSM-AT", "PGD-AT (Linf)", "PGD-AT (L2)", "SGT", "SGA", "ASGT", "NsLoss", "JacobReg"]


def inches_on_the_page(fig) -> float:
    """Its width as the inline backend crops it (a tight bounding box), at that backend's 100 dpi:
    at 25 dpi text came out about 2% narrower, and a figure 2% over the bound passed."""
    buffer, dpi = io.BytesIO(), 100
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    matplotlib.pyplot.close(fig)
    return Image.open(buffer).size[0] / dpi


def curves() -> object:
    rows = [
        {"method": m, "attack": a, "seed": s, "eps": e, "accuracy": RNG.random()}
        for m in METHODS[:4]
        for a in ("fgsm", "pgd", "mifgsm")
        for s in (0, 1)
        for e in (0.0, 0.1, 0.3)
    ]
    return plots.robust_accuracy_curves(pd.DataFrame(rows))


def four_panels() -> object:
    table = pd.DataFrame({"lam": [0.01, 0.02, 0.04], **{f"m{i}": RNG.random(3) for i in range(4)}})
    return plots.metric_panels(table, "lam", {f"m{i}": f"a measure's long title {i}" for i in range(4)}, logx=True)


def seven_measures() -> object:
    from robinterp.reports import scaat

    titles = scaat.titles()  # the SCAAT chapter's: the longest panel titles of the book
    rows = [
        {"dataset": d, "method": m, "seed": s, "metric": k, "score": RNG.random()}
        for d in ("mnist", "fashion_mnist")
        for m in METHODS[:4]
        for s in (0, 1)
        for k in titles
    ]
    return plots.measure_points(pd.DataFrame(rows), titles, order=METHODS[:4])


def four_settings() -> object:
    rows = [
        {"measure": f"measure {i}", "t": t, "eps": e, "value": RNG.random()}
        for i in range(4)
        for t in ("t 5", "t 10")
        for e in (0.05, 0.1, 0.2)
    ]
    return plots.against_setting(pd.DataFrame(rows), x="eps", y="value", hue="t", col="measure", xlabel="radius")


def eleven_pareto_panels() -> object:
    names = [f"x{i}" for i in range(11)]
    points = pd.DataFrame(RNG.random((len(METHODS), 12)), index=METHODS, columns=[*names, "y"])
    return plots.pareto_panels(
        points,
        x_titles={n: f"measure {n}" for n in names},
        y="y",
        ylabel="PGD accuracy (%)",
        front={n: METHODS[:3] for n in names},
        order=METHODS,
    )


def eight_images_nine_models() -> object:
    import torch

    images = torch.rand(8, 1, 28, 28)
    return plots.saliency_grid(images, {m: torch.rand(8, 1, 28, 28) for m in METHODS}, titles=["label 7"] * 8)


def twelve_measures_agreement() -> object:
    names = [f"a measure's name {i}" for i in range(12)]
    matrix = pd.DataFrame(np.corrcoef(RNG.random((12, 20))), index=names, columns=names)
    return plots.rank_heatmap(matrix, label="Spearman correlation over methods")


@pytest.mark.parametrize(
    "figure",
    [
        curves,
        four_panels,
        seven_measures,
        four_settings,
        eleven_pareto_panels,
        eight_images_nine_models,
        twelve_measures_agreement,
    ],
)
def test_a_multi_panel_figure_is_about_as_wide_as_the_page(figure):
    assert inches_on_the_page(figure()) <= 1.1 * plots.PAGE_WIDTH


@pytest.mark.parametrize("figure", [curves, four_panels, seven_measures, four_settings, eleven_pareto_panels])
def test_no_panel_title_runs_into_another(figure):
    fig = figure()
    fig.canvas.draw()
    # at the figure's dpi, with a gap of a few pixels: titles that merely touch read as one line
    boxes = [ax.title.get_window_extent().padded(3) for ax in fig.axes if ax.get_visible() and ax.get_title()]
    matplotlib.pyplot.close(fig)
    assert len(boxes) >= 2
    overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
    assert not overlapping, overlapping


@pytest.mark.parametrize("panels,columns", [(1, 1), (3, 3), (4, 2), (5, 3), (7, 3), (11, 3)])
def test_panels_wrap_at_three_a_row_and_four_make_a_square(panels, columns):
    assert plots.panel_columns(panels) == columns
