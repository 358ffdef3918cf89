"""Precision and recall for generative models (Kynkaanniemi et al. 2019) against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from hf_vqvae.metrics.functional import inside_manifold, knn_radii, precision_recall

# Real points and generated points in the plane, k = 1.
REAL = [(0.0, 0.0), (1.0, 0.0), (0.0, 2.0), (5.0, 5.0), (20.0, -20.0)]
GENERATED = [(0.5, 0.0), (3.0, 3.0), (10.0, 10.0), (-3.0, 0.0)]


def test_precision_and_recall_match_a_hand_computation():
    """k = 1. Radii of the real points (distance to the nearest other real point): (0,0) -> 1 [(1,0)], (1,0) -> 1,
    (0,2) -> 2 [(0,0)], (5,5) -> sqrt(34) [(0,2)], (20,-20) -> sqrt(761) [(1,0)].
    Generated points inside the real manifold: (0.5,0) (0.5 from (0,0)), (3,3) (sqrt(8) <= sqrt(34) from (5,5));
    (10,10) is sqrt(50) > sqrt(34) from (5,5), sqrt(164) > 2 from (0,2), sqrt(1000) > sqrt(761) from (20,-20);
    (-3,0) is 3 > 1 from (0,0), 4 > 1 from (1,0), sqrt(13) > 2 from (0,2), sqrt(89) > sqrt(34), sqrt(929) >
    sqrt(761): precision = 2 / 4.
    Radii of the generated points: (0.5,0) -> 3.5 [(-3,0)], (3,3) -> sqrt(15.25) [(0.5,0)], (10,10) -> sqrt(98)
    [(3,3)], (-3,0) -> 3.5. Real points inside: (0,0), (1,0) (0.5 from (0.5,0)), (0,2) (sqrt(4.25) <= 3.5),
    (5,5) (sqrt(8) <= sqrt(15.25) from (3,3)); (20,-20) is sqrt(818) > sqrt(15.25) from (3,3), sqrt(1000) >
    sqrt(98) from (10,10), and farther than 3.5 from the others: recall = 4 / 5."""
    radii = knn_radii(REAL, k=1)
    expected = torch.tensor([1.0, 1.0, 2.0, math.sqrt(34), math.sqrt(761)], dtype=torch.float64)
    torch.testing.assert_close(radii, expected)
    assert inside_manifold(GENERATED, REAL, radii).tolist() == [True, True, False, False]
    generated_radii = knn_radii(GENERATED, k=1)
    torch.testing.assert_close(
        generated_radii, torch.tensor([3.5, math.sqrt(15.25), math.sqrt(98), 3.5], dtype=torch.float64)
    )
    precision, recall = precision_recall(REAL, GENERATED, k=1)
    assert precision == pytest.approx(0.5) and recall == pytest.approx(0.8)
    # Chunked distance computations give the same answer.
    assert precision_recall(REAL, GENERATED, k=1, batch_size=2) == (precision, recall)


def test_k_nearest_neighbour_radius_and_the_boundary():
    """k = 2 on a line: radii are the second-nearest distances; a point exactly on a ball's boundary is inside."""
    points = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    torch.testing.assert_close(knn_radii(points, k=2), torch.tensor([3.0, 2.0, 3.0, 6.0], dtype=torch.float64))
    assert inside_manifold(torch.tensor([[13.0], [13.5]]), points, knn_radii(points, k=2)).tolist() == [True, False]


def test_identical_sets_have_full_precision_and_recall_and_bad_input_is_named():
    features = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert precision_recall(features, features.clone(), k=3) == (1.0, 1.0)
    far = features + 100.0
    assert precision_recall(features, far, k=3) == (0.0, 0.0)
    with pytest.raises(ValueError, match="k"):
        knn_radii(features[:3], k=3)
    with pytest.raises(ValueError, match="real_features"):
        precision_recall(torch.zeros(4), features)
    with pytest.raises(ValueError, match="feature sizes"):
        precision_recall(features, torch.zeros(10, 4))
