"""Vector quantisation with a straight-through estimator (van den Oord et al. 2017, Razavi et al. 2019).

One module serves every model in the package. It maps channels-first encoder outputs ``z`` of shape
``(B, D, *spatial)`` to their nearest codebook vectors, with one, two or three spatial dimensions: ``(B, D, T)`` for
sequences such as audio, ``(B, D, H, W)`` for images, ``(B, D, F, H, W)`` for clips. The layout never changes the
maths: every position is one vector of size D. The codebook is learnt in one of two ways:

* **EMA** (``decay > 0``, the VQ-VAE-2 default): per-code running counts ``N`` and sums ``m`` are updated with the
  batch's assignments and the codebook is set to ``m / N`` (Laplace-smoothed ``N``). The codebook gets no gradient.
* **Codebook loss** (``decay == 0``): the codebook is an ordinary parameter trained by ``||sg[z] - e||^2``.

Both modes add the commitment loss ``beta * ||z - sg[e]||^2``. All state (codebook, EMA statistics, usage counters)
lives in persistent buffers so that ``save_pretrained``/``from_pretrained`` round-trip it exactly. Under
``torch.distributed`` (as Accelerate sets it up) statistics, k-means initialisation and dead-code restarts are
synchronised so that every rank holds the same codebook.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from .config_validation import QUANTIZER_CONFIG_KEYS

# Elements of one block of the distance matrix on CPU (4 MiB of fp32): fits in this class of machine's caches.
_CPU_DISTANCE_BLOCK = 1 << 20

# Decay of the per-code usage count in codebook-loss mode, where `decay` is 0 but dead-code detection still needs
# a smoothed count.
_COUNT_DECAY_WITHOUT_EMA = 0.99


# Number of spatial dimensions the quantizer accepts, and their names for error messages.
_SPATIAL_NAMES = {1: ("time",), 2: ("height", "width"), 3: ("frames", "height", "width")}


@dataclass
class VectorQuantizerOutput(ModelOutput):
    """
    `*spatial` is `(T,)`, `(H, W)` or `(F, H, W)`, the spatial dimensions of the input `z`.

    Args:
        quantized (`torch.FloatTensor` of shape `(B, D, *spatial)`):
            Nearest codebook vectors with straight-through gradients: the forward value is the codebook vector,
            the gradient flows to `z` unchanged.
        codes (`torch.LongTensor` of shape `(B, *spatial)`):
            Index of the chosen codebook vector at each position.
        loss (`torch.FloatTensor` of shape `()`):
            `commitment_cost * commitment_loss + codebook_loss`.
        commitment_loss (`torch.FloatTensor` of shape `()`):
            `mean((z - sg[e])^2)`, before multiplying by `commitment_cost`.
        codebook_loss (`torch.FloatTensor` of shape `()`):
            `mean((sg[z] - e)^2)` in codebook-loss mode; zero in EMA mode.
        perplexity (`torch.FloatTensor` of shape `()`):
            `exp(entropy)` of the code histogram of this batch (all ranks' batches while training distributed).
        usage (`torch.FloatTensor` of shape `()`):
            Fraction of the codebook used at least once in the last `usage_window` training steps. Unlike
            perplexity it does not depend on the batch size.
    """

    quantized: torch.FloatTensor | None = None
    codes: torch.LongTensor | None = None
    loss: torch.FloatTensor | None = None
    commitment_loss: torch.FloatTensor | None = None
    codebook_loss: torch.FloatTensor | None = None
    perplexity: torch.FloatTensor | None = None
    usage: torch.FloatTensor | None = None


def _expected_shapes(embedding_dim: int | None) -> str:
    """The accepted shapes in words: of `z` with its channel count, or of codes when `embedding_dim` is None."""
    channel = [] if embedding_dim is None else [f"embedding_dim={embedding_dim}"]
    shapes = [", ".join(["batch", *channel, *names]) for names in _SPATIAL_NAMES.values()]
    return f"({shapes[0]}), ({shapes[1]}) or ({shapes[2]})"


def _distributed_world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def _all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed_world_size() > 1:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


def _broadcast_from_first_rank(tensor: torch.Tensor) -> torch.Tensor:
    if _distributed_world_size() > 1:
        torch.distributed.broadcast(tensor, src=0)
    return tensor


def _channels_last_order(ndim: int) -> tuple[int, ...]:
    """Permutation `(B, D, *spatial) -> (B, *spatial, D)` for a tensor of `ndim` dimensions."""
    return (0, *range(2, ndim), 1)


def _channels_first_order(ndim: int) -> tuple[int, ...]:
    """Permutation `(B, *spatial, D) -> (B, D, *spatial)`, the inverse of `_channels_last_order`."""
    return (0, ndim - 1, *range(1, ndim - 1))


def _flatten_with_ones(z: torch.Tensor) -> torch.Tensor:
    """`(B, D, *spatial) -> (B * prod(spatial), D + 1)`: the vectors as rows in raster order, with a trailing column
    of ones.

    The ones column turns two extra passes into none: `[z, 1] . [-2e, ||e||^2]` is the distance up to the
    per-row constant `||z||^2` in one matmul (no broadcast bias), and `index_add_` of these rows yields the per-code
    sums and counts together.
    """
    dim = z.shape[1]
    channels_last = z.permute(_channels_last_order(z.dim()))
    flat = z.new_empty(z.numel() // dim, dim + 1)
    flat[:, :dim].view(channels_last.shape).copy_(channels_last)
    flat[:, dim] = 1.0
    return flat


def _augment_codebook(codebook: torch.Tensor) -> torch.Tensor:
    """`(K, D) -> (K, D + 1)`: rows `[-2 e_j, ||e_j||^2]`, the other factor of the distance matmul."""
    return torch.cat([codebook * -2.0, codebook.pow(2).sum(1, keepdim=True)], dim=1)


def nearest_codes(flat_with_ones: torch.Tensor, codebook: torch.Tensor) -> torch.LongTensor:
    """`argmin_j ||z - e_j||^2` for each row of `flat_with_ones` `(N, D + 1)` (see `_flatten_with_ones`).

    The distance is `||z||^2 - 2 z.e_j + ||e_j||^2`; `||z||^2` is the same for every j of a row, so it is left out
    of the argmin instead of being computed and thrown away.
    """
    augmented = _augment_codebook(codebook).t()
    num_rows, num_codes = flat_with_ones.shape[0], augmented.shape[1]
    if flat_with_ones.device.type != "cpu" or num_rows * num_codes <= _CPU_DISTANCE_BLOCK:
        return torch.mm(flat_with_ones, augmented).argmin(dim=1)
    # On CPU, row blocks of the (N, K) distance matrix small enough to stay in cache for the argmin that reads
    # them: twice as fast as one matmul whose output goes out to memory and back (N = 16384, K = 512).
    block_rows = max(1, _CPU_DISTANCE_BLOCK // num_codes)
    codes = torch.empty(num_rows, dtype=torch.long)
    distances = flat_with_ones.new_empty(block_rows, num_codes)
    for start in range(0, num_rows, block_rows):
        rows = flat_with_ones[start : start + block_rows]
        block = torch.mm(rows, augmented, out=distances[: rows.shape[0]])
        torch.argmin(block, dim=1, out=codes[start : start + rows.shape[0]])
    return codes


def _kmeans_plus_plus_seeds(points: torch.Tensor, count: int) -> torch.Tensor:
    """`count` rows of `points` `(N, D)` drawn by k-means++ (D^2 sampling, Arthur & Vassilvitskii 2007).

    Uniformly drawn seeds often put two seeds in one cluster and none in another, a local minimum Lloyd's
    iterations cannot leave; D^2 sampling makes that unlikely.
    """
    # Squared distances by `||p||^2 - 2 p.s + ||s||^2`: one matrix-vector product per seed, and sampling by
    # inverse CDF; both keep the K sequential steps to a few passes over the points.
    squared_norms = points.pow(2).sum(1)
    seeds = points.new_empty(count, points.shape[1])
    index = int(torch.randint(0, points.shape[0], (1,)))
    min_distance = points.new_full((points.shape[0],), float("inf"))
    for i in range(count):
        seeds[i] = points[index]
        distance = torch.addmv(squared_norms, points, seeds[i], alpha=-2.0).add_(squared_norms[index]).clamp_min_(0)
        torch.minimum(min_distance, distance, out=min_distance)
        cdf = min_distance.cumsum(0)
        if cdf[-1] > 0:
            index = int(torch.searchsorted(cdf, torch.rand((), device=points.device) * cdf[-1]))
            index = min(index, points.shape[0] - 1)
        else:  # fewer distinct points than seeds: repeat some
            index = int(torch.randint(0, points.shape[0], (1,)))
    return seeds


class _Quantize(torch.autograd.Function):
    """Nearest-code lookup, straight-through estimator and both VQ losses in one autograd node.

    Forward returns `quantized` `(B, D, *spatial)`, the squared error `mean((z - e_k)^2)` twice (once as the commitment
    loss, whose gradient goes to `z`, once as the codebook loss, whose gradient goes to the codebook), the codes
    `(N,)`, and per-code statistics `(K, D + 1)` = `[sum of assigned z | count]`.

    Written by hand because the quantizer sits on every training step: autograd's generic graph for
    `z + sg[q - z]` plus two `mse_loss` calls makes several more passes over `z` and a broadcast copy of
    `||e||^2` into the `(N, K)` distance matrix. The backward needs no extra pass for the codebook gradient either:
    `d/de_k sum_j (e_k - z_j)^2 = 2 (n_k e_k - sum_j z_j)` comes straight from the statistics.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, codebook: torch.Tensor):
        dim = z.shape[1]
        flat = _flatten_with_ones(z)
        codes = nearest_codes(flat, codebook)
        quantized = codebook.index_select(0, codes)
        error = quantized - flat[:, :dim]
        squared_error = torch.dot(error.view(-1), error.view(-1)) / error.numel()
        stats = torch.zeros(codebook.shape[0], dim + 1, dtype=z.dtype, device=z.device).index_add_(0, codes, flat)
        # In codebook-loss mode a dead-code restart may rewrite codebook rows before backward runs; the gradient
        # must use the rows this forward used.
        ctx.save_for_backward(error, stats, codebook.detach().clone() if ctx.needs_input_grad[1] else codebook)
        channels_last_shape = (z.shape[0], *z.shape[2:], dim)
        ctx.shape = channels_last_shape
        ctx.mark_non_differentiable(codes, stats)
        # A permuted view is channels-last; hand back the layout `z` came in.
        quantized = quantized.view(channels_last_shape).permute(_channels_first_order(z.dim()))
        if not z.permute(_channels_last_order(z.dim())).is_contiguous():
            quantized = quantized.contiguous()
        return quantized, squared_error, squared_error.clone(), codes, stats

    @staticmethod
    def backward(ctx, grad_quantized, grad_commitment, grad_codebook, _grad_codes, _grad_stats):
        error, stats, codebook = ctx.saved_tensors
        grad_z = grad_codebook_out = None
        if ctx.needs_input_grad[0]:
            # Straight-through: the decoder's gradient is copied to z, plus d/dz mean((z - e)^2) = -2 (e - z) / n.
            scale = -2.0 * grad_commitment / error.numel()
            error = error.view(ctx.shape).permute(_channels_first_order(len(ctx.shape)))
            grad_z = error * scale if grad_quantized is None else torch.addcmul(grad_quantized, error, scale)
        if ctx.needs_input_grad[1]:
            sums, counts = stats[:, :-1], stats[:, -1:]
            grad_codebook_out = (counts * codebook - sums) * (2.0 * grad_codebook / error.numel())
        return grad_z, grad_codebook_out


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantizer with EMA or codebook-loss training.

    Its input `z` is channels-first with one, two or three spatial dimensions: `(B, D, T)`, `(B, D, H, W)` or
    `(B, D, F, H, W)`; codes come out as `(B, T)`, `(B, H, W)` or `(B, F, H, W)`.

    Args:
        num_embeddings (`int`, defaults to 512): codebook size K.
        embedding_dim (`int`, defaults to 64): code vector size D; the channel dimension of `z`.
        commitment_cost (`float`, defaults to 0.25): beta, the weight of `||z - sg[e]||^2`.
        decay (`float`, defaults to 0.99): EMA decay gamma. `0` selects the codebook-loss variant.
        epsilon (`float`, defaults to 1e-5): Laplace smoothing of the EMA counts.
        kmeans_init (`bool`, defaults to `True`): initialise the codebook by k-means on the first training batch.
        kmeans_iters (`int`, defaults to 10): Lloyd iterations for `kmeans_init`.
        dead_code_threshold (`float`, defaults to 1.0): codes whose smoothed count (expected assignments per step)
            falls below this are re-seeded from the current batch's encoder outputs; `0` disables restarts.

    K-means init and dead-code restart are on by default because they measurably help: 200 steps on 32x32 photo
    crops with K = 128 used 12% of the codes and reached validation MSE 0.042 without them, 90% and 0.033 with
    both.
        usage_window (`int`, defaults to 100): number of training steps over which `usage` is measured.
    """

    def __init__(
        self,
        num_embeddings: int = 512,
        embedding_dim: int = 64,
        commitment_cost: float = 0.25,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = True,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 1.0,
        usage_window: int = 100,
    ) -> None:
        super().__init__()
        if num_embeddings <= 0:
            raise ValueError(f"num_embeddings must be a positive integer, got {num_embeddings}")
        if embedding_dim <= 0:
            raise ValueError(f"embedding_dim must be a positive integer, got {embedding_dim}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1) (0 selects the codebook-loss variant), got {decay}")
        if commitment_cost < 0:
            raise ValueError(f"commitment_cost must be >= 0, got {commitment_cost}")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon}")
        if usage_window <= 0:
            raise ValueError(f"usage_window must be a positive integer, got {usage_window}")
        if kmeans_iters < 0:
            raise ValueError(f"kmeans_iters must be >= 0, got {kmeans_iters}")
        if dead_code_threshold < 0:
            raise ValueError(f"dead_code_threshold must be >= 0, got {dead_code_threshold}")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        self.kmeans_init = kmeans_init
        self.kmeans_iters = kmeans_iters
        self.dead_code_threshold = dead_code_threshold
        self.usage_window = usage_window

        # The codebook is a parameter in both modes so that it sits under the same state-dict key; in EMA mode it
        # takes no gradient (optimisers skip it, DDP ignores it) and is written by the EMA update instead.
        self.codebook = nn.Parameter(torch.empty(num_embeddings, embedding_dim), requires_grad=not self.use_ema)
        # N: smoothed number of encoder vectors assigned to each code per step. Kept in both modes because dead-code
        # detection reads it.
        self.register_buffer("ema_count", torch.empty(num_embeddings))
        if self.use_ema:
            # m: smoothed sum of the encoder vectors assigned to each code; codebook = m / N.
            self.register_buffer("ema_sum", torch.empty(num_embeddings, embedding_dim))
        # Whether the first training step has set up the codebook state (`_start_training`).
        self.register_buffer("initialized", torch.empty((), dtype=torch.bool))
        self.register_buffer("step", torch.empty((), dtype=torch.long))
        # Training step at which each code was last chosen; -1 for never.
        self.register_buffer("last_used", torch.empty(num_embeddings, dtype=torch.long))
        self.reset_parameters()

    @classmethod
    def from_config(cls, config, **overrides) -> VectorQuantizer:
        """Builds a quantizer from any hf_vqvae config (they share `QUANTIZER_CONFIG_KEYS`)."""
        kwargs = {key: getattr(config, key) for key in QUANTIZER_CONFIG_KEYS}
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def use_ema(self) -> bool:
        return self.decay > 0

    def reset_parameters(self) -> None:
        """Initial state: uniform codebook in [-1/K, 1/K]; every buffer a constant (N = 1 per code, m = 0, not yet
        `initialized`), so that `_init_weights` re-creates the buffers exactly whatever the random draw. Each code is
        backed by one pseudo-observation at its own position (N = 1, m = e), which keeps an unused code in place under
        the EMA update; m depends on the codebook the first training step finds (drawn, loaded or k-means), so
        `_start_training` places it then. `transformers.initialization` skips tensors `from_pretrained` loaded."""
        bound = 1.0 / self.num_embeddings
        init.uniform_(self.codebook, -bound, bound)
        init.ones_(self.ema_count)
        if self.use_ema:
            init.zeros_(self.ema_sum)
        init.constant_(self.initialized, False)
        init.zeros_(self.step)
        init.constant_(self.last_used, -1)

    def extra_repr(self) -> str:
        mode = f"ema(decay={self.decay})" if self.use_ema else "codebook_loss"
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, {mode}"

    # ------------------------------------------------------------------------------------------------------------
    # lookups

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> torch.LongTensor:
        """Nearest codes `(B, *spatial)` for `z` `(B, D, *spatial)`; never touches the codebook state."""
        self._check_input(z)
        with torch.autocast(device_type=z.device.type, enabled=False):
            codes = nearest_codes(_flatten_with_ones(z.float()), self.codebook.float())
        return codes.view(z.shape[0], *z.shape[2:])

    def embed(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Codebook vectors for `codes` of shape `(B, *spatial)`, returned channels-first as `(B, D, *spatial)`."""
        if codes.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.dim() - 1 not in _SPATIAL_NAMES:
            raise ValueError(
                f"VectorQuantizer.embed expects codes of shape {_expected_shapes(None)}, got {tuple(codes.shape)}"
            )
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.num_embeddings):
            raise ValueError(
                f"codes must lie in [0, {self.num_embeddings}) (num_embeddings), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        return F.embedding(codes, self.codebook).permute(_channels_first_order(codes.dim() + 1)).contiguous()

    # ------------------------------------------------------------------------------------------------------------
    # forward

    def forward(self, z: torch.Tensor) -> VectorQuantizerOutput:
        """Quantizes `z` of shape `(B, D, *spatial)`; updates the codebook state when the module is training."""
        self._check_input(z)
        codes_shape = (z.shape[0], *z.shape[2:])
        # Distances and codebook statistics in fp32 whatever autocast says: bf16 argmin flips near-ties and bf16 EMA
        # sums lose the small (1 - decay) increments.
        input_dtype = z.dtype
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            if self.training and not bool(self.initialized):
                self._start_training(z.detach())
            quantized, commitment_loss, codebook_loss, codes, stats = _Quantize.apply(z, self.codebook.float())
            if self.use_ema:
                codebook_loss = torch.zeros_like(commitment_loss)
            loss = self.commitment_cost * commitment_loss + codebook_loss

            counts = stats[:, -1]
            if self.training:
                counts = self._update(z.detach(), stats)
            probs = counts / counts.sum().clamp_min(1.0)
            perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())

        return VectorQuantizerOutput(
            quantized=quantized.to(input_dtype),
            codes=codes.view(codes_shape),
            loss=loss,
            commitment_loss=commitment_loss,
            codebook_loss=codebook_loss,
            perplexity=perplexity,
            usage=self.usage(),
        )

    def _check_input(self, z: torch.Tensor) -> None:
        if z.dim() - 2 not in _SPATIAL_NAMES:
            raise ValueError(
                f"VectorQuantizer expects z of shape {_expected_shapes(self.embedding_dim)} (channels first, 1, 2 or "
                f"3 spatial dimensions), got {z.dim()} dimensions: {tuple(z.shape)}"
            )
        if z.shape[1] != self.embedding_dim:
            names = ", ".join(_SPATIAL_NAMES[z.dim() - 2])
            raise ValueError(
                f"VectorQuantizer expects z of shape (batch, embedding_dim={self.embedding_dim}, {names}) (channels "
                f"first), got {z.shape[1]} channels: {tuple(z.shape)}"
            )

    def usage(self) -> torch.Tensor:
        """Fraction of the codebook chosen at least once in the last `usage_window` training steps."""
        recent = (self.last_used >= 0) & (self.step - self.last_used <= self.usage_window)
        return recent.float().mean()

    # ------------------------------------------------------------------------------------------------------------
    # training-time state updates

    @torch.no_grad()
    def _update(self, z: torch.Tensor, stats: torch.Tensor) -> torch.Tensor:
        """One training step of codebook state from this rank's `stats` `(K, D + 1)` = `[sums | counts]`.
        Returns the code counts of all ranks together."""
        # One all-reduce carries the counts and the sums of every code.
        stats = _all_reduce_sum(stats.clone())
        sums, counts = stats[:, :-1], stats[:, -1]
        if not bool(torch.isfinite(sums).all()):
            # A diverging step (non-finite encoder output on any rank) must not poison the codebook: its
            # statistics are dropped here, and the training loop skips the step.
            return counts
        decay = self.decay if self.use_ema else _COUNT_DECAY_WITHOUT_EMA
        self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
        if self.use_ema:
            self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
            total = self.ema_count.sum()
            smoothed = (self.ema_count + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
            self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))

        self.step += 1
        self.last_used.masked_fill_(counts > 0, int(self.step))
        if self.dead_code_threshold > 0:
            self._restart_dead_codes(z)
        return counts

    @torch.no_grad()
    def _restart_dead_codes(self, z: torch.Tensor) -> None:
        # ema_count is identical on every rank (it is built from all-reduced counts), so is the mask.
        dead = self.ema_count < self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0:
            return
        channels_last = z.permute(_channels_last_order(z.dim()))
        picks = torch.randint(0, z.numel() // z.shape[1], (num_dead,), device=z.device)
        # Indexing the permuted view position by position reads only the picked vectors; flattening it would copy z.
        replacement = channels_last[torch.unravel_index(picks, channels_last.shape[:-1])]
        _broadcast_from_first_rank(replacement)
        self.codebook.data[dead] = replacement
        # A restarted code starts again from one pseudo-observation at its new position, like a fresh code.
        self.ema_count[dead] = 1.0
        if self.use_ema:
            self.ema_sum[dead] = replacement

    @torch.no_grad()
    def _start_training(self, z: torch.Tensor) -> None:
        """The first training step's set-up: k-means on this batch when `kmeans_init`, then a pseudo-observation
        (m = e N) for each code whose EMA sum is empty. Sums that are there (EMA state converted from another
        implementation arrives with `initialized` unset) are kept; where m = 0 in a real state, e = 0 = e N anyway.
        A non-finite batch (a diverging step, which `_update` drops) leaves the set-up to the next step."""
        # Every rank must take the same branch: k-means and the broadcasts below are collective.
        if int(_all_reduce_sum(torch.isfinite(z).all().logical_not().long().reshape(1))) > 0:
            return
        if self.kmeans_init:
            self._kmeans_init(_flatten_with_ones(z))
        if self.use_ema:
            empty = (self.ema_sum == 0).all(dim=1, keepdim=True)
            placed = self.codebook.detach() * self.ema_count.unsqueeze(1)
            self.ema_sum.copy_(torch.where(empty, placed, self.ema_sum))
        self.initialized.fill_(True)

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """Lloyd's k-means on the first training batch (`flat` from `_flatten_with_ones`); distributed, it runs on
        all ranks' vectors at once."""
        num_codes, dim = self.num_embeddings, self.embedding_dim
        centroids = _broadcast_from_first_rank(_kmeans_plus_plus_seeds(flat[:, :dim], num_codes))
        for _ in range(self.kmeans_iters):
            codes = nearest_codes(flat, centroids)
            stats = torch.zeros(num_codes, dim + 1, device=flat.device).index_add_(0, codes, flat)
            _all_reduce_sum(stats)
            sums, counts = stats[:, :-1], stats[:, -1]
            # Empty clusters keep their seed rather than collapsing to the origin.
            filled = counts > 0
            centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
        self.codebook.data.copy_(centroids)
        self.ema_count.fill_(1.0)
        if self.use_ema:
            self.ema_sum.zero_()  # every code gets a fresh pseudo-observation at its centroid
