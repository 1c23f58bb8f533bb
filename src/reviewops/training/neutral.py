"""The neutral-class aids of sentiment training, and its class weights.

Each behind a ``sentiment.`` knob, off by default until the grouped CV of
``benchmarks/sentiment_recipes.py`` says it helps: ``label_smoothing`` (cross-entropy against
softened targets), ``loss: ordinal`` (cross-entropy plus the expected ordinal distance of the
prediction, so negative <-> positive mistakes cost twice a neighbour's) and ``tune_thresholds``
(per-class logit biases fitted on validation to maximize macro-F1, folded into the classifier's
output bias before saving: inference unchanged), ``star_neutral_mass`` (ordinal soft targets from
the stars: a 2- or 4-star review, next to 3 on the star scale, gives the neutral class that much of
its target; the head stays 3-class, so inference is unchanged). Pure functions of arrays and
models; the trainer in :mod:`reviewops.training.sentiment` calls them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reviewops.errors import ReviewOpsError
from reviewops.schema import LABELS

LOSSES = ("ce", "ordinal")
# Candidate logit biases for threshold tuning (the last class, positive, stays at 0: softmax is
# shift-invariant). Coarse on purpose: validation holds a handful of neutral reviews.
BIAS_GRID = np.round(np.arange(-2.0, 3.001, 0.25), 2)


def neutral_knobs(cfg: Any) -> tuple[float, str, bool]:
    """``(label_smoothing, loss, tune_thresholds)`` of ``sentiment`` config ``cfg`` (defaults where absent).

    Raises:
        ReviewOpsError: a loss other than ``ce``/``ordinal`` or a smoothing outside [0, 1).
    """
    smoothing = float(getattr(cfg, "label_smoothing", 0.0))
    loss = str(getattr(cfg, "loss", "ce"))
    if loss not in LOSSES:
        raise ReviewOpsError(f"sentiment.loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    if not 0.0 <= smoothing < 1.0:
        raise ReviewOpsError(f"sentiment.label_smoothing must be in [0, 1); got {smoothing}")
    return smoothing, loss, bool(getattr(cfg, "tune_thresholds", False))


# Training target ids under star_neutral_mass: 0..2 are the labels (LABELS order), 3 a 2-star
# review (negative, leaning neutral), 4 a 4-star one (positive, leaning neutral).
STAR_TARGETS = {2.0: 3, 4.0: 4}
TARGET_LABEL = np.array([0, 1, 2, 0, 2])  # target id -> label id


def star_target_ids(label_ids: np.ndarray, ratings: Any, mass: float) -> np.ndarray:
    """``label_ids`` with each 2-star negative and 4-star positive review moved to its target id 3 / 4.

    Rows without a rating, or whose label does not match the star (labels given by hand), keep
    their label; ``mass`` 0 changes nothing.
    """
    ids = np.asarray(label_ids, dtype=int).copy()
    if mass <= 0 or ratings is None:
        return ids
    import pandas as pd

    stars = pd.to_numeric(pd.Series(ratings), errors="coerce").to_numpy(dtype=float)
    for star, target in STAR_TARGETS.items():
        ids[(stars == star) & (TARGET_LABEL[target] == ids)] = target
    return ids


def star_target_matrix(mass: float) -> np.ndarray:
    """Rows = target ids, columns = labels: one-hot for 0..2; 3 and 4 give the neutral class ``mass``."""
    matrix = np.eye(len(TARGET_LABEL), len(LABELS), dtype=np.float32)
    matrix[3:] = 0.0
    neutral = LABELS.index("neutral")
    for target in (3, 4):
        matrix[target, TARGET_LABEL[target]] = 1.0 - mass
        matrix[target, neutral] = mass
    return matrix


def ordinal_costs(num_labels: int = len(LABELS)) -> np.ndarray:
    """``|i - j|``: how far apart two labels are on the ordinal scale :data:`LABELS` is sorted by."""
    ranks = np.arange(num_labels, dtype=np.float32)
    return np.abs(ranks[:, None] - ranks[None, :])


def macro_f1_of(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int = len(LABELS)) -> float:
    """Macro-F1 over ``num_labels`` classes (absent, never-predicted classes count 0, as sklearn's)."""
    f1s = []
    for c in range(num_labels):
        tp = float(np.sum((y_pred == c) & (y_true == c)))
        denom = float(np.sum(y_pred == c) + np.sum(y_true == c))
        f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s))


def fit_class_bias(logits: np.ndarray, labels: np.ndarray, grid: np.ndarray = BIAS_GRID) -> np.ndarray:
    """Per-class logit biases that maximize macro-F1 of ``argmax(logits + bias)`` on these rows.

    Every class but the last gets a bias from ``grid`` (the last stays 0); among the best
    combinations the one nearest zero wins, so without a gain nothing moves.
    """
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=int)
    k = logits.shape[1]
    best, best_key = np.zeros(k), (macro_f1_of(labels, logits.argmax(axis=1), k), 0.0)
    for combo in np.array(np.meshgrid(*[grid] * (k - 1), indexing="ij")).reshape(k - 1, -1).T:
        bias = np.append(combo, 0.0)
        key = (macro_f1_of(labels, (logits + bias).argmax(axis=1), k), -float(np.abs(bias).sum()))
        if key > best_key:
            best, best_key = bias, key
    return best


def class_weights(label_ids: np.ndarray | list[int], num_labels: int = len(LABELS)) -> np.ndarray:
    """Balanced weights ``n / (k * count_c)``, clipped to [0.1, 10]; 1.0 for absent classes."""
    counts = np.bincount(np.asarray(label_ids, dtype=int), minlength=num_labels).astype(float)
    total = counts.sum()
    weights = np.where(counts > 0, total / (num_labels * np.maximum(counts, 1)), 1.0)
    return np.clip(weights, 0.1, 10.0)


def sentiment_loss(
    logits: Any, labels: Any, weight: Any = None, smoothing: float = 0.0, costs: Any = None, targets: Any = None
) -> Any:
    """Class-weighted, optionally smoothed cross-entropy; with ``costs`` plus the expected ordinal cost.

    The expected cost is ``sum_k p_k * costs[y, k]`` under the predicted distribution, averaged
    with the same per-row class weights as the cross-entropy: with :func:`ordinal_costs`, mass on
    the opposite polarity costs twice mass on a neighbour (torch tensors in, a scalar out). With
    ``targets`` (:func:`star_target_matrix`) ``labels`` are target ids: :func:`soft_target_loss`.
    """
    import torch

    if targets is not None:
        return soft_target_loss(logits, labels, targets, weight, smoothing, costs)
    loss = torch.nn.functional.cross_entropy(logits, labels, weight=weight, label_smoothing=smoothing)
    if costs is None:
        return loss
    expected = (logits.softmax(dim=-1) * costs.to(logits.device, logits.dtype)[labels]).sum(dim=-1)
    row_w = torch.ones_like(expected) if weight is None else weight[labels]
    return loss + (row_w * expected).sum() / row_w.sum()


def soft_target_loss(
    logits: Any, target_ids: Any, targets: Any, weight: Any = None, smoothing: float = 0.0, costs: Any = None
) -> Any:
    """Cross-entropy against the rows ``targets[target_ids]``, weighted by each row's label's class weight.

    Normalized as the weighted hard cross-entropy (sum of row weights), so one-hot rows give the
    same value as :func:`sentiment_loss` without targets; ``costs`` add the expected ordinal cost
    under the soft target (``target @ costs``).
    """
    import torch

    target = targets.to(logits.device, logits.dtype)[target_ids]
    if smoothing:
        target = target * (1.0 - smoothing) + smoothing / target.shape[-1]
    labels = torch.as_tensor(TARGET_LABEL, device=logits.device)[target_ids]
    row_w = torch.ones(len(labels), device=logits.device, dtype=logits.dtype) if weight is None else weight[labels]
    loss = (row_w * -(target * logits.log_softmax(dim=-1)).sum(dim=-1)).sum() / row_w.sum()
    if costs is None:
        return loss
    row_costs = target @ costs.to(logits.device, logits.dtype)
    return loss + (row_w * (logits.softmax(dim=-1) * row_costs).sum(dim=-1)).sum() / row_w.sum()


def output_layer(model: Any) -> Any:
    """The classifier's last ``Linear`` with one output per label (``classifier``, ``out_proj``, ``score``)."""
    import torch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == len(LABELS)]
    if not layers:
        raise ReviewOpsError(f"{type(model).__name__} has no {len(LABELS)}-output linear layer to bias")
    return layers[-1]


def fold_class_bias(model: Any, bias: np.ndarray) -> None:
    """Add ``bias`` (model output order) to the output layer's bias, so saved logits carry it.

    Raises:
        ReviewOpsError: the head has no bias term (e.g. decoder ``score`` heads), where a bias
            added here would not survive saving and loading.
    """
    import torch

    layer = output_layer(model)
    if layer.bias is None:
        raise ReviewOpsError(
            f"sentiment.tune_thresholds needs a classifier head with a bias; {type(model).__name__}'s has none: "
            "set sentiment.tune_thresholds=false"
        )
    with torch.no_grad():
        layer.bias.add_(torch.as_tensor(bias, dtype=layer.bias.dtype, device=layer.bias.device))
    # Recorded for lineage only: the bias already sits in the weights.
    model.config.reviewops_class_bias = {LABELS[i]: float(b) for i, b in enumerate(bias)}
