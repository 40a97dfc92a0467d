"""Figures shared by the chapters."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch

from robinterp.titles import attack_title, dataset_title

PAGE_WIDTH = 7.0
"""Inches at the inline backend's 100 dpi that a book page shows at full size (its text column
is about 690 pixels wide at a 1280-pixel window): a wider figure is shrunk, fonts with it (a
12-inch row of panels read at 58%). The multi-panel figures wrap their panels to stay near it."""


def panel_columns(panels: int) -> int:
    """Panels per row: a square for four (2 x 2), else at most three."""
    return 2 if panels == 4 else min(panels, 3)


def panel_grid(panels: int, width: float, height: float, ncols: int | None = None) -> tuple[plt.Figure, np.ndarray]:
    """A figure of ``panels`` panels of ``width`` x ``height`` inches, ``ncols`` a row (None:
    ``panel_columns``); its axes as a 2-D array, those past the last panel hidden."""
    ncols = ncols or panel_columns(panels)
    nrows = -(-panels // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), constrained_layout=True, squeeze=False
    )
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    return fig, axes


def legend_above(grid: sns.FacetGrid, title: str) -> None:
    """A seaborn grid's legend over its panels, in one row, rather than beside them (which widens the figure)."""
    entries = len(grid.legend.texts) if grid.legend else 0
    sns.move_legend(grid, "lower center", bbox_to_anchor=(0.5, 1.0), ncol=max(min(entries, 4), 1), title=title)


def robust_accuracy_curves(
    table: pd.DataFrame, *, hue: str = "method", labels: Mapping[str, str] | None = None
) -> plt.Figure:
    """Accuracy (%) against epsilon, one panel per attack; bands are +-1 sd over seeds."""
    df = table.assign(accuracy_pct=100 * table["accuracy"], attack=table["attack"].map(attack_title))
    if labels:
        df[hue] = df[hue].map(lambda v: labels.get(v, v))
    panels = df["attack"].nunique()
    width, height = min(PAGE_WIDTH / panels, 4.2), 2.6 if panels >= 3 else 3.0  # one attack: not a stamp
    grid = sns.relplot(
        data=df,
        x="eps",
        y="accuracy_pct",
        hue=hue,
        col="attack",
        kind="line",
        marker="o",
        errorbar="sd",
        height=height,
        aspect=width / height,
        facet_kws={"sharey": True},
    )
    grid.set_axis_labels(r"$\epsilon$ ($L_\infty$, pixels in [0, 1])", "accuracy (%)")
    grid.set_titles("{col_name}")
    for ax in grid.axes.flat:
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    legend_above(grid, hue)
    return grid.figure


def saliency_grid(
    images: torch.Tensor,
    maps: Mapping[str, torch.Tensor],
    *,
    titles: Sequence[str] | None = None,
    row_labels: Mapping[str, str] | None = None,
    normalise: str = "per_map",
    cmap: str = "magma",
) -> plt.Figure:
    """Images on the first row, then one row of |attribution| maps per model.

    Every map shares one colour scale. ``normalise="per_map"`` divides each map by
    its own 99th percentile first (so the scale reads as a fraction of the map's
    top values and shapes compare across models whose gradients differ in size);
    ``"shared"`` keeps raw magnitudes under one common 99th percentile.
    """
    n = images.shape[0]
    rows = [("input", None)] + list(maps.items())
    margin = 2.0  # the row labels (written across, wrapped) and the colour bar
    cell = min(1.3, (PAGE_WIDTH - margin) / n)  # more images shrink the cells to fit the page, not the text
    fig, axes = plt.subplots(
        len(rows), n, figsize=(cell * n + margin, (cell + 0.05) * len(rows)), squeeze=False, constrained_layout=True
    )
    heat = {k: v.abs().sum(1) for k, v in maps.items()}  # channels summed
    if normalise == "per_map":
        heat = {
            k: v / torch.quantile(v.flatten(1), 0.99, dim=1).clamp_min(1e-12)[:, None, None] for k, v in heat.items()
        }
        vmax = 1.0
    else:
        vmax = float(torch.quantile(torch.cat([v.flatten() for v in heat.values()]), 0.99))
    mappable = None
    for r, (name, _) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "input":
                img = images[c].permute(1, 2, 0).squeeze(-1)
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
                if titles is not None:
                    ax.set_title(titles[c], fontsize=8)
            else:
                mappable = ax.imshow(heat[name][c], cmap=cmap, vmin=0, vmax=vmax)
            if c == 0:  # across, not up the side: a long label would run into the next row's
                row_label = textwrap.fill((row_labels or {}).get(name, name), 14)
                ax.set_ylabel(row_label, fontsize=8, rotation=0, ha="right", va="center")
    label = "|saliency| / own 99th pct." if normalise == "per_map" else "|saliency|"
    fig.colorbar(mappable, ax=axes[1:, :].ravel().tolist(), shrink=0.8, label=label)
    return fig


def removal_curves(table: pd.DataFrame, *, full_scale: bool = True) -> plt.Figure:
    """Accuracy (%) against the share of top-|saliency| features removed; dashed: random ranking;
    the accuracy axis from 0 to 100, or (``full_scale`` False) around the data."""
    df = table.assign(removed_pct=100 * table["removed"], accuracy_pct=100 * table["accuracy"])
    fig, ax = plt.subplots(figsize=(6.4, 3.8), constrained_layout=True)
    sns.lineplot(
        data=df,
        x="removed_pct",
        y="accuracy_pct",
        hue="method",
        style="ranking",
        style_order=["saliency", "random"],
        errorbar="sd",
        marker="o",
        ax=ax,
    )
    ax.set_xlabel("features removed (%)")
    ax.set_ylabel("accuracy (%)")
    if full_scale:
        ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(bbox_to_anchor=(1.02, 1), loc="upper left", fontsize=8)
    return fig


def lambda_search(trace: pd.DataFrame) -> plt.Figure:
    """The lambda protocol: each candidate's training cross-entropy against the random-guess line."""
    fig, ax = plt.subplots(figsize=(6, 3.4), constrained_layout=True)
    colors = ["tab:red" if high else "tab:green" for high in trace["too_high"]]
    ax.scatter(trace["lambda"], trace["training_ce"], c=colors, s=50, zorder=3)
    for i, (lam, ce) in enumerate(zip(trace["lambda"], trace["training_ce"])):
        ax.annotate(str(i + 1), (lam, ce), textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.axhline(trace["threshold"].iloc[0], color="gray", ls="--", label="random guess (less tolerance)")
    ax.axvline(trace["lambda0"].iloc[0], color="tab:blue", ls=":", label=r"$\lambda_0$")
    ax.axvline(trace["selected"].iloc[0], color="black", lw=1, label="selected")
    ax.set_xscale("log")
    ax.set_xlabel(r"$\lambda$ (candidates numbered in search order; red: too high)")
    ax.set_ylabel("training cross-entropy (nats)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def metric_panels(table: pd.DataFrame, x: str, columns: Mapping[str, str], *, logx: bool = False) -> plt.Figure:
    """One small panel per column of ``table`` against ``x``; ``columns`` maps column -> title."""
    fig, axes = panel_grid(len(columns), 3.0, 2.5)
    for ax, (column, title) in zip(axes.flat, columns.items()):
        ax.plot(table[x], table[column], marker="o")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(x)
        if logx:
            ax.set_xscale("log")
            ax.minorticks_off()
        ax.set_xticks(table[x], [f"{v:.3g}" for v in table[x]])  # the measured points, readable
        ax.ticklabel_format(axis="y", useOffset=False)  # values as measured, not "+9.07e-1" above the axis
        ax.grid(alpha=0.3)
    return fig


def measure_points(per_seed: pd.DataFrame, titles: Mapping[str, str], *, order: Sequence[str]) -> plt.Figure:
    """One panel per measure: each method's mean over seeds (points, one colour per data set) and
    the seeds' spread (bars: +-1 sd). ``per_seed`` has columns dataset, method, seed, metric, score."""
    fig, axes = panel_grid(len(titles), PAGE_WIDTH / panel_columns(len(titles)), 2.9)
    per_seed = per_seed.assign(dataset=per_seed["dataset"].map(dataset_title))  # "Fashion-MNIST", not its key
    for ax, (metric, title) in zip(axes.flat, titles.items()):
        sns.pointplot(
            data=per_seed[per_seed.metric == metric],
            x="method",
            y="score",
            hue="dataset",
            order=list(order),
            errorbar="sd",
            dodge=0.3,
            linestyle="none",
            markersize=4,
            ax=ax,
        )
        # wrapped: at a third of the page, "complexity (Quantus, entropy) ↓" ran into its neighbour
        ax.set_title(textwrap.fill(title, 28), fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        ax.grid(alpha=0.3)
        ax.get_legend().remove()
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside upper center", ncol=len(labels), fontsize=8, title="data set", title_fontsize=8
    )
    return fig


def against_setting(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    hue: str,
    col: str,
    xlabel: str,
    col_wrap: int | None = None,
    ylabels: Mapping[str, str] | None = None,
) -> plt.Figure:
    """One panel per value of ``col`` (its own y scale): ``y`` against ``x``, one line per ``hue``,
    bands +-1 sd over seeds where there are several; ``col_wrap`` panels a row (None: 2 x 2 for
    four panels, else at most three)."""
    if col_wrap is None:
        col_wrap = panel_columns(table[col].nunique())
    grid = sns.relplot(
        data=table,
        x=x,
        y=y,
        hue=hue,
        col=col,
        col_wrap=col_wrap,
        kind="line",
        marker="o",
        errorbar="sd",
        height=2.8,
        aspect=1.0,
        facet_kws={"sharey": False, "sharex": False},
    )
    grid.set_titles("{col_name}")
    for name, ax in grid.axes_dict.items():
        ax.set_xlabel(xlabel)
        ax.set_ylabel((ylabels or {}).get(name, ""))
        ax.grid(alpha=0.3)
    grid.tight_layout()  # room for every row's x labels, now that each panel has its own
    return grid.figure


def labelled_scatter(
    table: pd.DataFrame,
    *,
    x: str,
    y: str,
    label: str,
    xlabel: str,
    ylabel: str,
    named: str | None = None,
    others: str = "others",
) -> plt.Figure:
    """One point per row of ``table``; rows where the boolean column ``named`` is true (all rows
    when None) are named by their ``label`` column, the rest are grey points called ``others``."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8), constrained_layout=True)
    shown = table[table[named]] if named else table
    if named:
        rest = table[~table[named]]
        ax.scatter(rest[x], rest[y], s=18, color="0.6", zorder=2, label=others)
        ax.legend(fontsize=8)
    ax.scatter(shown[x], shown[y], s=30, zorder=3)
    for _, row in shown.iterrows():
        ax.annotate(str(row[label]), (row[x], row[y]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    return fig


def pareto_panels(
    points: pd.DataFrame,
    *,
    x_titles: Mapping[str, str],
    y: str,
    ylabel: str,
    front: Mapping[str, Sequence[str]],
    order: Sequence[str],
    ncols: int = 3,
) -> plt.Figure:
    """One panel per measure (a column of ``points``, indexed by method): robustness ``y`` against
    it, one colour per method (in ``order``), the Pareto front of each panel joined by a line. The
    legend takes the first free panel, or sits beside the panels when none is free."""
    names = list(x_titles)
    fig, axes = panel_grid(len(names), PAGE_WIDTH / ncols, 2.5, ncols)
    colours = dict(zip(order, sns.color_palette("tab20", len(order))))
    for ax, name in zip(axes.flat, names):
        for method in order:
            if method in points.index:
                ax.scatter(
                    points.loc[method, name], points.loc[method, y], s=26, color=colours[method], label=method, zorder=3
                )
        members = points.loc[list(front[name])].sort_values(name)
        ax.plot(members[name], members[y], color="0.3", lw=1, ls="--", zorder=2)
        ax.set_title(x_titles[name], fontsize=9)
        ax.set_ylabel(ylabel if ax in axes[:, 0] else "", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    legend = {"fontsize": 8, "title": "method", "title_fontsize": 8}
    if len(names) < axes.size:
        free = axes.flat[len(names)]
        free.set_visible(True)
        free.axis("off")
        free.legend(handles, labels, loc="upper left", ncol=1 + len(labels) // 9, **legend)
    else:
        fig.legend(handles, labels, loc="outside right upper", **legend)
    return fig


def rank_heatmap(matrix: pd.DataFrame, *, label: str) -> plt.Figure:
    """A symmetric matrix of correlations in [-1, 1], annotated."""
    cell = min(0.55, (PAGE_WIDTH - 2.5) / len(matrix))  # many measures shrink the cells, not the text
    fig, ax = plt.subplots(figsize=(cell * len(matrix) + 2.5, 0.8 * cell * len(matrix) + 1.5), constrained_layout=True)
    sns.heatmap(
        matrix,
        vmin=-1,
        vmax=1,
        center=0,
        cmap="vlag",
        annot=True,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        cbar_kws={"label": label},
        square=True,
        ax=ax,
    )
    ax.tick_params(labelsize=8)
    return fig


def stacked_counts(counts: pd.DataFrame, *, xlabel: str) -> plt.Figure:
    """One horizontal bar per row of ``counts``, stacked by its columns (in their order)."""
    fig, ax = plt.subplots(figsize=(7.5, 0.5 * len(counts) + 1.4), constrained_layout=True)
    palette = {
        "consistent": "#2a9d8f",
        "no meaningful difference": "#8ecae6",
        "inconclusive": "#e9c46a",
        "inconsistent": "#e76f51",
        "not judged": "#a8a8a8",
        "not testable here": "#e4e4e4",
        "held": "#2a9d8f",
        "unsettled": "#e9c46a",
        "flipped": "#e76f51",
    }
    left = pd.Series(0.0, index=counts.index)
    for column in counts.columns:
        ax.barh(counts.index, counts[column], left=left, label=column, color=palette.get(column, "0.75"))
        left += counts[column]
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(
        fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=min(len(counts.columns), 4), frameon=False
    )
    ax.grid(axis="x", alpha=0.3)
    return fig
