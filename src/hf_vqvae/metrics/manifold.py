"""Precision and recall of a generative model (Kynkaanniemi, Karras, Laine, Lehtinen, Aila 2019, "Improved Precision
and Recall Metric for Assessing Generative Models"), from feature vectors (e.g. the FID Inception features).

Each set of features stands for a manifold: the union of balls centred on its points, each with the radius of the
distance from that point to its k-th nearest neighbour in the same set (k = 3 in the paper). A point is inside a
manifold when it lies in at least one of its balls (distance <= radius). Then

* precision = the share of generated points inside the manifold of the real points (how many samples look real);
* recall = the share of real points inside the manifold of the generated points (how much of the data the samples
  cover).

The paper compares sets of equal size: the radii, hence both figures, depend on how many points there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _as_features(features: Any, name: str) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(features) if not isinstance(features, torch.Tensor) else features)
    if tensor.ndim != 2 or len(tensor) == 0:
        raise ValueError(
            f"`{name}` must be a non-empty (N, D) array of feature vectors, got shape {tuple(tensor.shape)}"
        )
    return tensor.detach().to(device="cpu", dtype=torch.float64)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`(len(a), len(b))` squared Euclidean distances, one matmul: ||a||^2 - 2 a.b + ||b||^2, clamped at 0."""
    return ((a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)).clamp_min_(0)


def knn_radii(features: Any, k: int = 3, batch_size: int = 1024) -> torch.Tensor:
    """`(N,)` distance of each point to its k-th nearest neighbour among the others (the point itself excluded)."""
    points = _as_features(features, "features")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k < len(points):
        raise ValueError(f"`k` must be an integer in [1, {len(points) - 1}] for {len(points)} points, got {k!r}")
    radii = []
    for start in range(0, len(points), batch_size):
        distances = _squared_distances(points[start : start + batch_size], points)
        rows = torch.arange(len(distances))
        distances[rows, rows + start] = float("inf")  # not its own neighbour
        radii.append(distances.kthvalue(k, dim=1).values.sqrt())
    return torch.cat(radii)


def inside_manifold(points: Any, manifold: Any, radii: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """`(M,)` bool: whether each of `points` lies within `radii[i]` of some `manifold[i]`."""
    points, manifold = _as_features(points, "points"), _as_features(manifold, "manifold")
    if points.shape[1] != manifold.shape[1]:
        raise ValueError(f"feature sizes differ: {points.shape[1]} vs {manifold.shape[1]}")
    squared_radii = radii.to(torch.float64).square()
    inside = []
    for start in range(0, len(points), batch_size):
        distances = _squared_distances(points[start : start + batch_size], manifold)
        inside.append((distances <= squared_radii).any(dim=1))
    return torch.cat(inside)


def precision_recall(
    real_features: Any, generated_features: Any, k: int = 3, batch_size: int = 1024
) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of `generated_features` `(M, D)` against
    `real_features` `(N, D)`, with k-nearest-neighbour manifolds. Returns `(precision, recall)`, each in [0, 1]."""
    real = _as_features(real_features, "real_features")
    generated = _as_features(generated_features, "generated_features")
    precision = inside_manifold(generated, real, knn_radii(real, k, batch_size), batch_size).double().mean().item()
    recall = inside_manifold(real, generated, knn_radii(generated, k, batch_size), batch_size).double().mean().item()
    return precision, recall


__all__ = ["inside_manifold", "knn_radii", "precision_recall"]
