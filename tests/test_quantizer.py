"""VectorQuantizer maths against hand computations."""

from __future__ import annotations

import pytest
import torch

from hf_vqvae import VectorQuantizer
from hf_vqvae.quantizer import _flatten_with_ones, nearest_codes


def as_feature_map(vectors: list[list[float]], height: int, width: int) -> torch.Tensor:
    """Rows in raster order -> (1, D, height, width), so that position (i, j) holds vectors[i * width + j]."""
    return torch.tensor(vectors).T.reshape(1, -1, height, width).contiguous()


def make_quantizer(codebook: list[list[float]], **kwargs) -> VectorQuantizer:
    options = {"kmeans_init": False, "dead_code_threshold": 0.0, **kwargs}
    quantizer = VectorQuantizer(num_embeddings=len(codebook), embedding_dim=len(codebook[0]), **options)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor(codebook))
        if quantizer.use_ema:
            quantizer.ema_sum.copy_(quantizer.codebook)
    return quantizer


def test_one_ema_step_matches_hand_computation():
    # Three codes in 2-D; four encoder vectors, two near code 0, two near code 1, none near code 2.
    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], decay=0.5, epsilon=0.1)
    z = as_feature_map([[0.1, 0.0], [0.9, 0.1], [1.1, -0.1], [0.2, 0.1]], 2, 2)
    out = quantizer.train()(z)

    assert out.codes.tolist() == [[[0, 1], [1, 0]]]
    # Squared errors to the chosen (old) codes: 0.01, 0.02, 0.02, 0.05 -> mean over 8 elements.
    assert out.commitment_loss.item() == pytest.approx(0.10 / 8)
    assert out.loss.item() == pytest.approx(0.25 * 0.10 / 8)
    assert out.codebook_loss.item() == 0.0
    # Histogram (2, 2, 0): perplexity = exp(ln 2) = 2.
    assert out.perplexity.item() == pytest.approx(2.0)

    # n = (2, 2, 0); sums = ((0.3, 0.1), (2.0, 0.0), (0, 0)); the initial state is N = 1, m = e.
    # N <- 0.5 * 1 + 0.5 * n = (1.5, 1.5, 0.5)
    assert quantizer.ema_count.tolist() == pytest.approx([1.5, 1.5, 0.5])
    # m <- 0.5 * e + 0.5 * sums
    expected_sum = [[0.15, 0.05], [0.5 + 1.0, 0.0], [0.0, 0.5]]
    assert quantizer.ema_sum.flatten().tolist() == pytest.approx(sum(expected_sum, []))
    # Laplace: N_i <- (N_i + 0.1) / (3.5 + 3 * 0.1) * 3.5 = (1.6, 1.6, 0.6) * 3.5 / 3.8
    smoothed = [1.6 * 3.5 / 3.8, 1.6 * 3.5 / 3.8, 0.6 * 3.5 / 3.8]
    expected_codebook = [[m / n for m in row] for row, n in zip(expected_sum, smoothed)]
    assert quantizer.codebook.flatten().tolist() == pytest.approx(sum(expected_codebook, []), rel=1e-6)
    assert quantizer.step.item() == 1


def test_eval_mode_leaves_state_untouched():
    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    quantizer.eval()(as_feature_map([[0.1, 0.0], [0.9, 0.1], [1.1, -0.1], [0.2, 0.1]], 2, 2))
    for key, value in quantizer.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_nearest_codes_equals_brute_force_distances():
    torch.manual_seed(0)
    z = torch.randn(3, 8, 16, 16)
    codebook = torch.randn(700, 8)  # large enough for the blocked CPU path
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    brute = torch.cdist(flat.double(), codebook.double()).argmin(1)
    assert torch.equal(nearest_codes(_flatten_with_ones(z), codebook), brute)


def test_straight_through_and_commitment_gradient():
    torch.manual_seed(0)
    quantizer = make_quantizer(torch.randn(16, 4).tolist(), commitment_cost=0.25)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(z)
    upstream = torch.randn_like(z)

    (grad_st,) = torch.autograd.grad(out.quantized, z, upstream, retain_graph=True)
    assert torch.equal(grad_st, upstream), "straight-through must copy the decoder-side gradient to z unchanged"

    (grad_commit,) = torch.autograd.grad(out.loss, z)
    # d/dz [0.25 * mean((z - e)^2)] = 0.5 * (z - e) / numel, with e the code vectors forward returned (the EMA
    # update has moved the codebook since, so they are read from the output, not the codebook).
    chosen = out.quantized.detach()
    torch.testing.assert_close(grad_commit, 0.5 * (z.detach() - chosen) / z.numel())


def test_codebook_loss_mode_moves_chosen_codes_towards_encoder_outputs():
    torch.manual_seed(0)
    quantizer = make_quantizer(torch.randn(8, 4).tolist(), decay=0.0)
    assert quantizer.codebook.requires_grad
    z = torch.randn(4, 4, 5, 5)
    optimizer = torch.optim.SGD(quantizer.parameters(), lr=0.5)
    before = quantizer.codebook.detach().clone()
    out = quantizer(z)
    out.loss.backward()
    optimizer.step()
    after = quantizer.codebook.detach()

    codes = out.codes.flatten()
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4)
    for code in range(8):
        assigned = flat[codes == code]
        if len(assigned) == 0:
            assert torch.equal(after[code], before[code]), "an unused code must not move"
            continue
        mean = assigned.mean(0)
        assert (after[code] - mean).norm() < (before[code] - mean).norm()
        # Exact: grad of mean((sg[z] - e)^2) w.r.t. e_k = 2 (n_k e_k - sum z) / numel
        grad = 2 * (len(assigned) * before[code] - assigned.sum(0)) / z.numel()
        torch.testing.assert_close(after[code], before[code] - 0.5 * grad)


def test_ema_mode_gives_codebook_no_gradient():
    quantizer = make_quantizer(torch.randn(8, 4).tolist())
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(z)
    (out.quantized.sum() + out.loss).backward()
    assert quantizer.codebook.grad is None
    assert z.grad is not None


def test_kmeans_init_places_codes_on_the_data():
    torch.manual_seed(0)
    # Four tight, well separated clusters; k-means with K = 4 must find their centres.
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    vectors = centres.repeat(64, 1) + 0.01 * torch.randn(256, 2)
    z = vectors.T.reshape(1, 2, 16, 16)
    quantizer = VectorQuantizer(4, 2, kmeans_init=True, kmeans_iters=20, dead_code_threshold=0.0, decay=0.99)
    assert not quantizer.initialized
    quantizer.train()(z)
    assert quantizer.initialized
    found = sorted(map(tuple, quantizer.codebook.detach().round().tolist()))
    assert found == sorted(map(tuple, centres.tolist()))


def test_dead_codes_are_restarted_from_encoder_outputs():
    torch.manual_seed(0)
    quantizer = make_quantizer([[0.0, 0.0], [100.0, 100.0]], dead_code_threshold=0.9, decay=0.5)
    z = torch.randn(1, 2, 4, 4) * 0.1  # all near code 0: code 1 gets nothing, its count decays to 0.5 < 0.9
    quantizer.train()(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 2)
    restarted = quantizer.codebook.detach()[1]
    assert any(torch.equal(restarted, row) for row in flat), "restarted code must be one of the batch's vectors"
    assert quantizer.ema_count[1].item() == 1.0


def test_usage_counts_codes_over_the_window():
    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0]], usage_window=2)
    near = {0: [0.0, 0.0], 1: [1.0, 0.0], 2: [0.0, 1.0]}
    quantizer.train()
    assert quantizer(as_feature_map([near[0]] * 4, 2, 2)).usage.item() == pytest.approx(1 / 4)
    assert quantizer(as_feature_map([near[1]] * 4, 2, 2)).usage.item() == pytest.approx(2 / 4)
    assert quantizer(as_feature_map([near[2]] * 4, 2, 2)).usage.item() == pytest.approx(3 / 4)
    # code 0 was last used 3 steps ago, outside the window of 2
    assert quantizer(as_feature_map([near[2]] * 4, 2, 2)).usage.item() == pytest.approx(2 / 4)


def test_autocast_keeps_quantizer_in_fp32():
    quantizer = make_quantizer(torch.randn(8, 4).tolist())
    z = torch.randn(2, 4, 3, 3).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = quantizer.eval()(z)
    # Distances and losses in fp32 (the codes are those of the upcast z); the output in the caller's dtype.
    assert out.loss.dtype == torch.float32 and out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.codes, quantizer.encode(z.float()))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"num_embeddings": 0}, "num_embeddings"),
        ({"embedding_dim": -1}, "embedding_dim"),
        ({"decay": 1.0}, "decay"),
        ({"commitment_cost": -0.1}, "commitment_cost"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        VectorQuantizer(**kwargs)


def test_wrong_embedding_dim_input_is_rejected():
    quantizer = VectorQuantizer(16, 8)
    with pytest.raises(ValueError, match="embedding_dim=8"):
        quantizer(torch.randn(2, 4, 3, 3))


def test_embed_rejects_out_of_range_codes():
    quantizer = VectorQuantizer(16, 8)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        quantizer.embed(torch.tensor([[[16]]]))


def test_non_finite_input_leaves_the_codebook_state_untouched():
    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dead_code_threshold=0.5)
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    z = as_feature_map([[0.1, 0.0], [float("nan"), 0.1], [1.1, -0.1], [0.2, float("inf")]], 2, 2)
    out = quantizer.train()(z)
    assert not torch.isfinite(out.commitment_loss)
    for key, value in quantizer.state_dict().items():
        assert torch.equal(value, before[key]), key
