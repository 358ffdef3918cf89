"""VectorQuantizer maths against hand computations, for inputs with 1, 2 and 3 spatial dimensions."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from hf_vqvae import VectorQuantizer
from hf_vqvae.quantizer import _flatten_with_ones, nearest_codes


def as_feature_map(vectors: list[list[float]], height: int, width: int) -> torch.Tensor:
    """Rows in raster order -> (1, D, height, width), so that position (i, j) holds vectors[i * width + j]."""
    return torch.tensor(vectors).T.reshape(1, -1, height, width).contiguous()


def make_quantizer(codebook: list[list[float]], **kwargs) -> VectorQuantizer:
    """A quantizer with this codebook; its EMA sums are left empty, for the first training step to fill (m = e N)."""
    options = {"kmeans_init": False, "dead_code_threshold": 0.0, **kwargs}
    quantizer = VectorQuantizer(num_embeddings=len(codebook), embedding_dim=len(codebook[0]), **options)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor(codebook))
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


def test_initial_buffers_are_constants_and_the_first_step_backs_each_code_by_its_own_position():
    # Every buffer is the same for any codebook draw (transformers re-creates buffers by `_init_weights`); the first
    # training step places the pseudo-observations m = e N at the codebook in use then, here one set by hand.
    torch.manual_seed(0)
    first, second = VectorQuantizer(4, 2, kmeans_init=False), VectorQuantizer(4, 2, kmeans_init=False)
    assert not torch.equal(first.codebook, second.codebook)
    for (name, a), (_, b) in zip(first.named_buffers(), second.named_buffers()):
        assert torch.equal(a, b), name
    assert first.ema_sum.abs().sum() == 0 and first.ema_count.tolist() == [1.0] * 4 and not first.initialized

    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], decay=0.5)
    with torch.no_grad():
        quantizer.ema_count.copy_(torch.tensor([2.0, 4.0, 0.5]))
    quantizer.train()(as_feature_map([[0.1, 0.0]], 1, 1))  # one vector, for code 0
    # m <- 0.5 * e N + 0.5 * sums
    expected_sum = [0.5 * 0.0 * 2 + 0.5 * 0.1, 0.0, 0.5 * 1.0 * 4, 0.0, 0.0, 0.5 * 1.0 * 0.5]
    assert quantizer.ema_sum.flatten().tolist() == pytest.approx(expected_sum)
    assert quantizer.initialized


def test_ema_sums_already_there_are_kept_by_the_first_step():
    # EMA state converted from another implementation arrives with `initialized` unset: its sums are the state.
    quantizer = make_quantizer([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], decay=0.5)
    with torch.no_grad():
        quantizer.ema_sum.copy_(torch.tensor([[0.0, 0.0], [3.0, 1.0], [0.0, 0.0]]))
    quantizer.train()(as_feature_map([[0.1, 0.0]], 1, 1))
    # Code 1 keeps its sum (3, 1); codes 0 and 2 had none and get e N = (0, 0) and (0, 1).
    expected_sum = [0.5 * 0.0 + 0.5 * 0.1, 0.0, 1.5, 0.5, 0.0, 0.5]
    assert quantizer.ema_sum.flatten().tolist() == pytest.approx(expected_sum)


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


@pytest.mark.parametrize("spatial", [(256,), (16, 16), (4, 8, 8)], ids=["1d", "2d", "3d"])
def test_kmeans_init_places_codes_on_the_data(spatial):
    torch.manual_seed(0)
    # Four tight, well separated clusters; k-means with K = 4 must find their centres.
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
    vectors = centres.repeat(64, 1) + 0.01 * torch.randn(256, 2)
    z = vectors.T.reshape(1, 2, *spatial)
    quantizer = VectorQuantizer(4, 2, kmeans_init=True, kmeans_iters=20, dead_code_threshold=0.0, decay=0.99)
    assert not quantizer.initialized
    quantizer.train()(z)
    assert quantizer.initialized
    found = sorted(map(tuple, quantizer.codebook.detach().round().tolist()))
    assert found == sorted(map(tuple, centres.tolist()))


@pytest.mark.parametrize("spatial", [(16,), (4, 4), (2, 2, 4)], ids=["1d", "2d", "3d"])
def test_dead_codes_are_restarted_from_encoder_outputs(spatial):
    torch.manual_seed(0)
    quantizer = make_quantizer([[0.0, 0.0], [100.0, 100.0]], dead_code_threshold=0.9, decay=0.5)
    z = torch.randn(1, 2, *spatial) * 0.1  # all near code 0: code 1 gets nothing, its count decays to 0.5 < 0.9
    quantizer.train()(z)
    flat = z.movedim(1, -1).reshape(-1, 2)
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


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((2, 4, 3), r"\(batch, embedding_dim=8, time\) .*got 4 channels"),
        ((2, 4, 3, 3), r"\(batch, embedding_dim=8, height, width\) .*got 4 channels"),
        ((2, 4, 2, 3, 3), r"\(batch, embedding_dim=8, frames, height, width\) .*got 4 channels"),
    ],
)
def test_wrong_embedding_dim_input_is_rejected(shape, expected):
    quantizer = VectorQuantizer(16, 8)
    with pytest.raises(ValueError, match=expected):
        quantizer(torch.randn(shape))
    with pytest.raises(ValueError, match=expected):
        quantizer.encode(torch.randn(shape))


@pytest.mark.parametrize("shape", [(8,), (2, 8), (1, 8, 2, 2, 2, 2)])
def test_wrong_rank_input_is_rejected_naming_the_accepted_shapes(shape):
    quantizer = VectorQuantizer(16, 8)
    accepted = (
        r"\(batch, embedding_dim=8, time\), \(batch, embedding_dim=8, height, width\) or "
        r"\(batch, embedding_dim=8, frames, height, width\)"
    )
    for call in (quantizer, quantizer.encode):
        with pytest.raises(ValueError, match=accepted + rf".*got {len(shape)} dimensions"):
            call(torch.randn(shape))


@pytest.mark.parametrize("shape", [(5,), (1, 1, 1, 1, 1)])
def test_embed_rejects_codes_of_the_wrong_rank(shape):
    quantizer = VectorQuantizer(16, 8)
    accepted = r"\(batch, time\), \(batch, height, width\) or \(batch, frames, height, width\)"
    with pytest.raises(ValueError, match=accepted):
        quantizer.embed(torch.zeros(shape, dtype=torch.long))


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


# ----------------------------------------------------------------------------------------------------------------
# 1-D (B, D, T) and 3-D (B, D, F, H, W) inputs: the same maths as a 2-D map, position by position.

ND_SPATIAL = [pytest.param((10,), id="1d"), pytest.param((2, 3, 4), id="3d")]


def channels_first(vectors: torch.Tensor, batch: int, spatial: tuple[int, ...]) -> torch.Tensor:
    """Rows `(batch * prod(spatial), D)` in raster order -> `(batch, D, *spatial)`, contiguous."""
    return vectors.reshape(batch, *spatial, vectors.shape[1]).movedim(-1, 1).contiguous()


def brute_force_codes(vectors: torch.Tensor, codebook: torch.Tensor) -> list[int]:
    """argmin_j sum_d (z_d - e_jd)^2 for every row, one distance at a time in float64."""
    codes = []
    for z in vectors.double().tolist():
        distances = [sum((a - b) ** 2 for a, b in zip(z, e)) for e in codebook.double().tolist()]
        codes.append(min(range(len(distances)), key=distances.__getitem__))
    return codes


@pytest.mark.parametrize("spatial", ND_SPATIAL)
def test_nd_codes_are_the_argmin_of_squared_distances(spatial):
    torch.manual_seed(1)
    batch, dim = 2, 3
    quantizer = make_quantizer(torch.randn(12, dim).tolist()).eval()
    vectors = torch.randn(batch * torch.Size(spatial).numel(), dim)
    z = channels_first(vectors, batch, spatial)
    out = quantizer(z)

    expected = torch.tensor(brute_force_codes(vectors, quantizer.codebook.detach())).view(batch, *spatial)
    assert out.codes.shape == (batch, *spatial) and out.codes.dtype == torch.long
    assert torch.equal(out.codes, expected)
    assert torch.equal(quantizer.encode(z), expected)
    # quantized holds e_k at each position, channels-first like z; embed(codes) gives the same tensor.
    chosen = quantizer.codebook.detach()[expected.flatten()]
    assert out.quantized.shape == z.shape
    assert torch.equal(out.quantized, channels_first(chosen, batch, spatial))
    assert torch.equal(quantizer.embed(expected), out.quantized)
    squared_error = sum((a - b) ** 2 for a, b in zip(vectors.flatten().tolist(), chosen.flatten().tolist()))
    assert out.commitment_loss.item() == pytest.approx(squared_error / vectors.numel(), rel=1e-5)


@pytest.mark.parametrize("spatial", ND_SPATIAL)
def test_nd_straight_through_and_loss_gradients(spatial):
    torch.manual_seed(2)
    for decay in (0.99, 0.0):
        quantizer = make_quantizer(torch.randn(16, 4).tolist(), commitment_cost=0.25, decay=decay)
        before = quantizer.codebook.detach().clone()
        z = torch.randn(2, 4, *spatial, requires_grad=True)
        out = quantizer(z)
        upstream = torch.randn_like(z)

        (grad_st,) = torch.autograd.grad(out.quantized, z, upstream, retain_graph=True)
        assert torch.equal(grad_st, upstream), "straight-through must copy the decoder-side gradient unchanged"
        # d/dz [0.25 * mean((z - e)^2)] = 0.5 * (z - e) / numel
        (grad_commit,) = torch.autograd.grad(out.loss, z, retain_graph=True)
        torch.testing.assert_close(grad_commit, 0.5 * (z.detach() - out.quantized.detach()) / z.numel())
        if decay == 0.0:
            # d/de_k mean((sg[z] - e)^2) = 2 (n_k e_k - sum of the z assigned to k) / numel
            (grad_codebook,) = torch.autograd.grad(out.loss, quantizer.codebook)
            vectors, codes = z.detach().movedim(1, -1).reshape(-1, 4), out.codes.flatten()
            for k in range(16):
                assigned = vectors[codes == k]
                expected = 2 * (len(assigned) * before[k] - assigned.sum(0)) / z.numel()
                torch.testing.assert_close(grad_codebook[k], expected)


@pytest.mark.parametrize("spatial", ND_SPATIAL)
def test_nd_one_ema_step_matches_the_spec_formulas(spatial):
    torch.manual_seed(3)
    gamma, eps, batch, dim = 0.9, 1e-3, 2, 2
    initial = torch.randn(6, dim)
    initial[5] = 50.0  # far from every vector: an unused code, held in place by its pseudo-observation
    quantizer = make_quantizer(initial.tolist(), decay=gamma, epsilon=eps).train()
    vectors = torch.randn(batch * torch.Size(spatial).numel(), dim)
    out = quantizer(channels_first(vectors, batch, spatial))

    codes = brute_force_codes(vectors, initial)
    assert out.codes.flatten().tolist() == codes
    rows, e = vectors.double().tolist(), initial.double().tolist()
    # n_i and sum_j z_ij per code; the initial state is N_i = 1, m_i = e_i.
    n = [codes.count(i) for i in range(6)]
    sums = [[sum(rows[j][d] for j in range(len(rows)) if codes[j] == i) for d in range(dim)] for i in range(6)]
    big_n = [gamma * 1.0 + (1 - gamma) * n[i] for i in range(6)]
    m = [[gamma * e[i][d] + (1 - gamma) * sums[i][d] for d in range(dim)] for i in range(6)]
    total = sum(big_n)
    smoothed = [(big_n[i] + eps) / (total + 6 * eps) * total for i in range(6)]
    codebook = [[m[i][d] / smoothed[i] for d in range(dim)] for i in range(6)]
    assert n[5] == 0
    assert quantizer.ema_count.tolist() == pytest.approx(big_n, rel=1e-6)
    assert quantizer.ema_sum.flatten().tolist() == pytest.approx(sum(m, []), rel=1e-5)
    assert quantizer.codebook.flatten().tolist() == pytest.approx(sum(codebook, []), rel=1e-5)
    histogram = [count / len(codes) for count in n if count]
    perplexity = torch.exp(-torch.tensor(histogram).mul(torch.tensor(histogram).log()).sum())
    assert out.perplexity.item() == pytest.approx(perplexity.item(), rel=1e-6)


def test_1d_and_3d_layouts_train_exactly_like_the_same_vectors_as_a_2d_map():
    # The same 48 vectors per step, in the same raster order, as (B, D, T), (B, D, H, W) and (B, D, F, H, W). With
    # k-means init and dead-code restarts on and the same seed, every output and all state must agree bit for bit.
    layouts = {"1d": (24,), "2d": (4, 6), "3d": (2, 3, 4)}
    torch.manual_seed(4)
    steps = [torch.randn(48, 4) * torch.tensor([3.0, 1.0, 0.1, 0.1]) for _ in range(4)]
    results = {}
    for name, spatial in layouts.items():
        torch.manual_seed(5)
        quantizer = VectorQuantizer(8, 4, decay=0.5, kmeans_iters=3, dead_code_threshold=4.0).train()
        outputs, restarts = [], 0
        for vectors in steps:
            z = channels_first(vectors, 2, spatial).requires_grad_()
            out = quantizer(z)
            (grad,) = torch.autograd.grad(out.quantized.sum() + out.loss, z)
            assert out.codes.shape == (2, *spatial) and out.quantized.shape == z.shape
            rows = [
                out.codes.flatten(),
                out.quantized.movedim(1, -1).reshape(-1, 4),
                grad.movedim(1, -1).reshape(-1, 4),
            ]
            outputs += rows + [out.loss, out.perplexity, out.usage]
            # Codes under the threshold of 4 were restarted this step, which resets their count to exactly 1.
            restarts += int((quantizer.ema_count == 1.0).sum())
        outputs += [quantizer.eval().encode(channels_first(steps[0], 2, spatial)).flatten()]
        results[name] = (outputs, quantizer.state_dict())
        assert restarts > 0, "the comparison must cover dead-code restarts"
    outputs_2d, state_2d = results["2d"]
    for name in ("1d", "3d"):
        outputs, state = results[name]
        for i, (a, b) in enumerate(zip(outputs, outputs_2d)):
            assert torch.equal(a.reshape(b.shape), b), (name, i)
        for key, value in state.items():
            assert torch.equal(value, state_2d[key]), (name, key)
    assert int(state_2d["step"]) == 4 and bool(state_2d["initialized"])


def _distributed_worker(rank: int, store: str, results: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        states = {}
        for name, spatial in (("1d", (12,)), ("3d", (2, 2, 4))):
            torch.manual_seed(10 + rank)  # different data and RNG streams per rank
            quantizer = VectorQuantizer(8, 3, decay=0.8, kmeans_iters=2, dead_code_threshold=2.0).train()
            for _ in range(3):
                quantizer(torch.randn(2, 3, *spatial))
            states.update({f"{name}.{key}": value for key, value in quantizer.state_dict().items()})
        torch.save(states, f"{results}{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_nd_distributed_ranks_hold_the_same_codebook(tmp_path):
    # Two gloo ranks with different data and seeds: statistics are all-reduced, k-means seeds and restarted codes
    # broadcast from rank 0, so both ranks must end with the same state bit for bit.
    # Forked, not spawned: the children inherit the imported package instead of paying for importing it again.
    args = (str(tmp_path / "store"), str(tmp_path / "rank"))
    mp.start_processes(_distributed_worker, args=args, nprocs=2, start_method="fork")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys()
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    assert int(rank0["1d.step"]) == int(rank0["3d.step"]) == 3
