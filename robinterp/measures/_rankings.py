"""How a model ranks its pixels for ROAD and ROAR: an explanation of the true or the predicted
class, and for an attribution-alignment model also its own map."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from robinterp import explain, models, roar
from robinterp.methods import attribution_alignment


def rankings(
    model: nn.Module,
    explainer: str,
    explainer_options: tuple[tuple[str, Any], ...],
    target: str,
    own_map_layer: str | None,
) -> list[roar.Ranking]:
    """The explanation's ranking (vanilla saliency keeps ROAR's name "saliency"), then the
    model's own map when ``own_map_layer`` names the layer it explains."""
    if explainer == "saliency" and not explainer_options:
        found = [roar.saliency_ranking(model, target)]
    else:
        options = dict(explainer_options)

        def attribute(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            labels = y if target == "true" else models.predict(model, x).clone()
            return explain.explain(model, x, labels, explainer, **options)

        found = [roar.Ranking(explainer, attribute, ("robinterp.explain",), target)]
    if own_map_layer is not None:
        found.append(
            roar.Ranking(
                "map",
                lambda x, y: attribution_alignment.explanation(model, x, y, layer=own_map_layer),
                (attribution_alignment.__name__,),
            )
        )
    return found
