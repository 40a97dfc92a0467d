"""NsLoss (Moshe et al.): a penalty on how much neurons react to small random input noise,
and the paper's protocol for choosing its weight lambda (section 4.4).

Equations 4 to 7 of Moshe et al.: for every neuron j of every counted layer
i, MA_ij is its mean absolute activation on the batch, MD_ij the mean absolute
change of its activation under N random perturbations on the L2 sphere of radius
eps_ns, NS_ij = MD_ij / (eps_ns |M_i| MA_ij), and NsLoss = sum_ij NS_ij MA_ij.
MA cancels in the product (where MA > 0), so the loss is
sum_i mean_j MD_ij / eps_ns: per layer, the mean absolute activation change per
unit of input perturbation. That is how it is computed here, with one forward
pass over the batch and its N perturbed copies and forward hooks on the counted
layers, and tested against a per-neuron loop of the equations as written.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from robinterp import RobinterpError, device
from robinterp.methods import LossOutput, Method, budget_free
from robinterp.settings.choices import NEURON_SETS, NSLOSS_PASSES
from robinterp.settings.methods import NsLossParams

ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus)


def sphere_samples(x: torch.Tensor, radius: float, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` points per input on the L2 sphere of ``radius`` around it: shape (n, B, ...).

    A Gaussian direction normalised per sample is uniform on the sphere. The points
    are not clipped to [0, 1]: clipping would move them off the sphere the paper
    defines (||x - x_k|| = eps_ns).
    """
    noise = torch.randn((n,) + tuple(x.shape), generator=generator, device=x.device, dtype=x.dtype)
    norms = noise.flatten(2).norm(dim=2).clamp_min(1e-12).view(n, x.shape[0], *([1] * (x.ndim - 1)))
    return x.unsqueeze(0) + radius * noise / norms


@contextlib.contextmanager
def recorded_activations(model: nn.Module, neurons: str) -> Iterator[list[torch.Tensor]]:
    """Collect the outputs of the counted layers during the forward passes inside the block.

    The logits are appended by the caller (they are the model's output); this
    records every activation module when ``neurons`` includes activations.
    """
    if neurons not in NEURON_SETS:
        raise RobinterpError(f"neurons must be one of {', '.join(NEURON_SETS)}, got {neurons!r}")
    outputs: list[torch.Tensor] = []
    handles = []
    if neurons != "logits":
        layers = [m for m in model.modules() if isinstance(m, ACTIVATIONS)]
        if not layers:
            raise RobinterpError(
                f"{type(model).__name__} has no activation modules "
                f"({', '.join(a.__name__ for a in ACTIVATIONS)}) to count as neurons; "
                f"use neurons='logits'"
            )
        if any(getattr(m, "inplace", False) for m in layers):
            raise RobinterpError("NsLoss needs activations that are not in-place (inplace=False)")
        handles = [m.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for m in layers]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


@contextlib.contextmanager
def running_statistics_kept(model: nn.Module) -> Iterator[None]:
    """BatchNorm's running statistics untouched by the forward passes inside the block (momentum
    0, which also covers a cumulative average), each layer's settings restored afterwards."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m, m.momentum, None if m.num_batches_tracked is None else m.num_batches_tracked.clone()) for m in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum, tracked in saved:
            layer.momentum = momentum
            if tracked is not None:
                layer.num_batches_tracked.copy_(tracked)


def neuron_sensitivity_loss(
    model: nn.Module,
    x: torch.Tensor,
    *,
    eps_ns: float = 0.5,
    n: int = 5,
    neurons: str = "activations_and_logits",
    passes: str = "auto",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """NsLoss (equation 7) of ``model`` on the batch ``x``, and the clean logits.

    ``passes`` (``NSLOSS_PASSES``): one forward pass over the batch and its ``n`` perturbed copies
    together ("joint"), or the batch in one and the copies in a second with BatchNorm's running
    statistics kept for the clean batch ("separate"); "auto" is separate exactly when the model has
    BatchNorm (in eval mode both are the same: running statistics normalise every input).
    """
    if not (eps_ns > 0 and math.isfinite(eps_ns)):
        raise RobinterpError(f"eps_ns must be a finite number > 0, got {eps_ns!r}")
    if not (isinstance(n, int) and n >= 1):
        raise RobinterpError(f"n (perturbations per sample) must be an integer >= 1, got {n!r}")
    if passes not in NSLOSS_PASSES:
        raise RobinterpError(f"passes must be one of {', '.join(NSLOSS_PASSES)}, got {passes!r}")
    batch = x.shape[0]
    perturbed = sphere_samples(x, eps_ns, n, generator).flatten(0, 1)
    if passes == "separate" or (passes == "auto" and has_batchnorm(model)):
        with recorded_activations(model, neurons) as clean_layers:
            logits = model(x)
        with running_statistics_kept(model), recorded_activations(model, neurons) as noisy_layers:
            noisy_logits = model(perturbed)
        if neurons != "activations":
            clean_layers, noisy_layers = clean_layers + [logits], noisy_layers + [noisy_logits]
        pairs = list(zip(clean_layers, noisy_layers))
    else:
        with recorded_activations(model, neurons) as layers:
            logits_all = model(torch.cat([x, perturbed]))
        if neurons != "activations":
            layers = layers + [logits_all]
        logits = logits_all[:batch]
        pairs = [(out[:batch], out[batch:]) for out in layers]
    loss = logits.new_zeros(())
    for clean, noisy in pairs:
        noisy = noisy.view(n, batch, *clean.shape[1:])
        md = (noisy - clean.unsqueeze(0)).abs().mean(dim=(0, 1))  # MD_ij, one per neuron j
        loss = loss + md.mean() / eps_ns  # sum_j MD_ij / (eps_ns |M_i|)
    return loss, logits


def nsloss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params: NsLossParams, *, progress: float) -> LossOutput:
    """NsLoss training (Moshe et al., equation 3): CE(f(x), y) + lam NsLoss."""
    if params.lam is None:
        raise RobinterpError(
            "NsLoss needs a weight lam to train; the neuron_sensitivity chapter "
            "chooses it by the paper's protocol when its entry leaves lam unset"
        )
    penalty, logits = neuron_sensitivity_loss(
        model, x, eps_ns=params.eps_ns, n=params.n, neurons=params.neurons, passes=params.passes
    )
    return F.cross_entropy(logits, y) + params.lam * penalty, logits


@device.on_model_device
def lambda_zero(
    model: nn.Module,
    batches: list[torch.Tensor],
    num_classes: int,
    *,
    eps_ns: float = 0.5,
    n: int = 5,
    neurons: str = "activations_and_logits",
    passes: str = "auto",
    seed: int = 0,
) -> tuple[float, float]:
    """Steps 1 and 2 of the lambda protocol (section 4.4): (NsLoss_0, lambda_0).

    NsLoss_0 is the mean NsLoss of the (standard) ``model`` over ``batches`` (the
    paper: 10 random batches of training and validation data), in eval mode;
    lambda_0 = log2(num_classes) / NsLoss_0.
    """
    if not batches:
        raise RobinterpError("lambda_zero needs at least one batch")
    generator = torch.Generator(device=batches[0].device).manual_seed(seed)
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            values = [
                float(
                    neuron_sensitivity_loss(
                        model, xb, eps_ns=eps_ns, n=n, neurons=neurons, passes=passes, generator=generator
                    )[0]
                )
                for xb in batches
            ]
    finally:
        model.train(training)
    ns0 = sum(values) / len(values)
    if not ns0 > 0:
        raise RobinterpError(
            f"NsLoss_0 is {ns0}: the model's counted neurons do not react to "
            f"perturbations of radius {eps_ns}; lambda_0 is undefined"
        )
    return ns0, math.log2(num_classes) / ns0


RANDOM_GUESS_CE = {"log2": math.log2, "ln": math.log}


def _starting_accuracy(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], count: int) -> float:
    """Accuracy (%) of ``model`` as it is, in training mode as the candidates train, on the first
    ``count`` of ``batches``: the reference a candidate's training accuracy is compared with."""
    model.train()
    right = []
    with torch.no_grad():
        for (xb, yb), _ in zip(batches, range(count)):
            xb, yb = xb.to(device.of(model)), yb.to(device.of(model))
            right.append(100.0 * (model(xb).argmax(1) == yb).float().mean().item())
    return sum(right) / max(1, len(right))


def select_lambda(
    make_model: Callable[[], nn.Module],
    make_optimizer: Callable[[nn.Module], torch.optim.Optimizer],
    epoch: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    lam0: float,
    num_classes: int,
    *,
    eps_ns: float = 0.5,
    n: int = 5,
    neurons: str = "activations_and_logits",
    passes: str = "auto",
    iterations: int = 4,
    spread: float = 10.0,
    max_steps: int = 3,
    random_guess_ce: str = "ln",
    tolerance: float = 0.05,
    window: int = 10,
    accuracy_drop: float | None = None,
) -> tuple[float | None, pd.DataFrame]:
    """Step 3 of the lambda protocol (section 4.4): bracket, then bisect, around lambda_0.

    Each candidate continues training a fresh copy of the standard model
    (``make_model``) for at most one epoch (``epoch`` yields its batches) with
    CE + lambda NsLoss. It is too high if the training cross-entropy, averaged over
    the last ``window`` batches, reaches that of a random guess, less ``tolerance``
    (a fraction; ours: a collapsing model approaches the random guess from below).
    The paper writes the random guess as log2(C), its value in bits; PyTorch's
    cross-entropy is in nats, where it is ln(C) (the default). ``"log2"`` compares
    nats with log2(C) = 1.44 ln(C) literally, which a collapsed model never reaches.
    With ``accuracy_drop`` (points; ours) a candidate is also too high when its training accuracy,
    averaged over the last ``window`` batches, falls more than that below the standard model's own
    on the epoch's first ``window`` batches, before any step: a continuation of one epoch at a low
    learning rate from a trained model rarely reaches the random guess's cross-entropy, so the
    paper's test alone cannot fire there, and the search would run to its cap.

    The search starts at lambda_0. It first brackets: lambda is multiplied by ``spread``
    (divided, when lambda_0 is already too high) until one candidate is too high and one
    is not, at most ``max_steps`` times (the cap: lambda_0 * spread**max_steps). Then it
    bisects geometrically between the two, ``iterations`` candidates. Without a bracket
    there is nothing to bisect and the search stops. Returns the largest lambda that
    was not too high (None if every one was) and the trace, one row per candidate, with
    its ``phase`` ("bracket" or "bisect") and whether a bracket was found (``bracketed``).
    """
    if random_guess_ce not in RANDOM_GUESS_CE:
        raise RobinterpError(f"random_guess_ce must be one of {', '.join(RANDOM_GUESS_CE)}, got {random_guess_ce!r}")
    if not (lam0 > 0 and spread > 1 and iterations >= 1 and max_steps >= 1):
        raise RobinterpError(
            f"need lam0 > 0, spread > 1, iterations >= 1 and max_steps >= 1; got {lam0}, "
            f"{spread}, {iterations}, {max_steps}"
        )
    if not 0 <= tolerance < 1:
        raise RobinterpError(f"tolerance must be in [0, 1), got {tolerance!r}")
    threshold = (1 - tolerance) * RANDOM_GUESS_CE[random_guess_ce](num_classes)
    rows = []
    reference = _starting_accuracy(make_model(), epoch(), window) if accuracy_drop is not None else math.nan

    def too_high(lam: float, phase: str) -> bool:
        model = make_model()
        optimizer = make_optimizer(model)
        model.train()
        recent: deque[float] = deque(maxlen=window)
        right: deque[float] = deque(maxlen=window)
        high, steps = False, 0
        for xb, yb in epoch():
            xb, yb = xb.to(device.of(model)), yb.to(device.of(model))  # batches stay on the CPU
            penalty, logits = neuron_sensitivity_loss(model, xb, eps_ns=eps_ns, n=n, neurons=neurons, passes=passes)
            ce = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            (ce + lam * penalty).backward()
            optimizer.step()
            recent.append(ce.item())
            right.append(100.0 * (logits.argmax(1) == yb).float().mean().item())
            steps += 1
            if len(recent) == window and sum(recent) / window >= threshold:
                high = True
                break
            if accuracy_drop is not None and len(right) == window and sum(right) / window < reference - accuracy_drop:
                high = True
                break
        rows.append(
            {
                "lambda": lam,
                "too_high": high,
                "batches": steps,
                "phase": phase,
                "training_ce": sum(recent) / max(1, len(recent)),
                "threshold": threshold,
                "accuracy_drop": reference - sum(right) / max(1, len(right)),
            }
        )
        return high

    fine_at, high_at = (None, lam0) if too_high(lam0, "bracket") else (lam0, None)
    for _ in range(max_steps):
        if fine_at is not None and high_at is not None:
            break
        if high_at is None:  # every candidate so far is fine: grow
            lam = fine_at * spread
            fine_at, high_at = (fine_at, lam) if too_high(lam, "bracket") else (lam, None)
        else:  # every candidate so far is too high: shrink
            lam = high_at / spread
            fine_at, high_at = (None, lam) if too_high(lam, "bracket") else (lam, high_at)
    bracketed = fine_at is not None and high_at is not None
    for _ in range(iterations if bracketed else 0):
        lam = math.sqrt(fine_at * high_at)
        if too_high(lam, "bisect"):
            high_at = lam
        else:
            fine_at = lam
    fine = [row["lambda"] for row in rows if not row["too_high"]]
    return (max(fine) if fine else None), pd.DataFrame(rows).assign(bracketed=bracketed)


METHOD = Method(
    "nsloss", NsLossParams, nsloss, "neuron sensitivity regularization (Moshe et al.)", budget_dependence=budget_free
)
