"""Vector quantisation with a straight-through estimator (van den Oord et al. 2017, Razavi et al. 2019).

One module serves every model in the package. It maps channels-first encoder outputs ``z`` of shape
``(B, D, H, W)`` to their nearest codebook vectors and learns the codebook in one of two ways:

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

# The keys a model config forwards to `VectorQuantizer`; they keep the same names in all three configs.
QUANTIZER_CONFIG_KEYS = (
    "num_embeddings",
    "embedding_dim",
    "commitment_cost",
    "decay",
    "epsilon",
    "kmeans_init",
    "kmeans_iters",
    "dead_code_threshold",
    "usage_window",
)

# Decay of the per-code usage count in codebook-loss mode, where `decay` is 0 but dead-code detection still needs
# a smoothed count.
_COUNT_DECAY_WITHOUT_EMA = 0.99


@dataclass
class VectorQuantizerOutput(ModelOutput):
    """
    Args:
        quantized (`torch.FloatTensor` of shape `(B, D, H, W)`):
            Nearest codebook vectors with straight-through gradients: the forward value is the codebook vector,
            the gradient flows to `z` unchanged.
        codes (`torch.LongTensor` of shape `(B, H, W)`):
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


class _StraightThrough(torch.autograd.Function):
    """Returns the codebook vectors `q` while passing the output gradient to `z` untouched.

    This is `z + sg[q - z]` without materialising the two temporaries: the quantizer sits on the hot path of every
    training step, and the saved elementwise passes are a measurable share of its time.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return q

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad_output, None


class VectorQuantizer(nn.Module):
    """Nearest-neighbour vector quantizer with EMA or codebook-loss training.

    Args:
        num_embeddings (`int`, defaults to 512): codebook size K.
        embedding_dim (`int`, defaults to 64): code vector size D; the channel dimension of `z`.
        commitment_cost (`float`, defaults to 0.25): beta, the weight of `||z - sg[e]||^2`.
        decay (`float`, defaults to 0.99): EMA decay gamma. `0` selects the codebook-loss variant.
        epsilon (`float`, defaults to 1e-5): Laplace smoothing of the EMA counts.
        kmeans_init (`bool`, defaults to `False`): initialise the codebook by k-means on the first training batch.
        kmeans_iters (`int`, defaults to 10): Lloyd iterations for `kmeans_init`.
        dead_code_threshold (`float`, defaults to 0.0): codes whose smoothed count (expected assignments per step)
            falls below this are re-seeded from the current batch's encoder outputs; `0` disables restarts.
        usage_window (`int`, defaults to 100): number of training steps over which `usage` is measured.
    """

    def __init__(
        self,
        num_embeddings: int = 512,
        embedding_dim: int = 64,
        commitment_cost: float = 0.25,
        decay: float = 0.99,
        epsilon: float = 1e-5,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
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
        # Whether the codebook has been initialised from data (always true without k-means init).
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
        """Initial state: uniform codebook in [-1/K, 1/K], each code backed by one pseudo-observation at its own
        position (N = 1, m = e). That pseudo-observation is what keeps an unused code where it is under the EMA
        update, instead of being divided by a near-zero count.

        Uses `transformers.initialization`, whose helpers skip tensors that `from_pretrained` already loaded.
        """
        bound = 1.0 / self.num_embeddings
        init.uniform_(self.codebook, -bound, bound)
        init.ones_(self.ema_count)
        if self.use_ema:
            init.copy_(self.ema_sum, self.codebook)
        init.constant_(self.initialized, not self.kmeans_init)
        init.zeros_(self.step)
        init.constant_(self.last_used, -1)

    def extra_repr(self) -> str:
        mode = f"ema(decay={self.decay})" if self.use_ema else "codebook_loss"
        return f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}, {mode}"

    # ------------------------------------------------------------------------------------------------------------
    # lookups

    def nearest_codes(self, flat: torch.Tensor, codebook: torch.Tensor | None = None) -> torch.LongTensor:
        """Index of the nearest code for each row of `flat` (N, D), by one matmul.

        `argmin_j ||z||^2 - 2 z.e_j + ||e_j||^2`; the `||z||^2` term is the same for every j of a row, so it is left
        out of the argmin rather than computed and thrown away.
        """
        codebook = self.codebook.float() if codebook is None else codebook
        distances = torch.addmm(codebook.pow(2).sum(1), flat, codebook.t(), beta=1.0, alpha=-2.0)
        return distances.argmin(dim=1)

    def embed(self, codes: torch.LongTensor) -> torch.FloatTensor:
        """Codebook vectors for `codes` of shape (B, H, W), returned channels-first as (B, D, H, W)."""
        if codes.dtype not in (torch.int32, torch.int64):
            raise TypeError(f"codes must be an integer tensor, got dtype {codes.dtype}")
        if codes.numel() and (codes.min() < 0 or codes.max() >= self.num_embeddings):
            raise ValueError(
                f"codes must lie in [0, {self.num_embeddings}) (num_embeddings), got values in "
                f"[{int(codes.min())}, {int(codes.max())}]"
            )
        return F.embedding(codes, self.codebook).permute(0, 3, 1, 2).contiguous()

    # ------------------------------------------------------------------------------------------------------------
    # forward

    def forward(self, z: torch.Tensor) -> VectorQuantizerOutput:
        """Quantizes `z` of shape (B, D, H, W); updates the codebook state when the module is training."""
        if z.dim() != 4 or z.shape[1] != self.embedding_dim:
            raise ValueError(
                f"VectorQuantizer expects z of shape (batch, embedding_dim={self.embedding_dim}, height, width), "
                f"got {tuple(z.shape)}"
            )
        batch, dim, height, width = z.shape
        # Distances and codebook statistics in fp32 whatever autocast says: bf16 argmin flips near-ties and bf16 EMA
        # sums lose the small (1 - decay) increments.
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            flat = z.permute(0, 2, 3, 1).reshape(-1, dim)
            if self.training and not bool(self.initialized):
                self._kmeans_init(flat.detach())
            codebook = self.codebook.float()
            codes = self.nearest_codes(flat.detach(), codebook.detach())
            quantized = F.embedding(codes, codebook).view(batch, height, width, dim).permute(0, 3, 1, 2)

            commitment_loss = F.mse_loss(z, quantized.detach())
            if self.use_ema:
                codebook_loss = commitment_loss.new_zeros(())
            else:
                codebook_loss = F.mse_loss(quantized, z.detach())
            loss = self.commitment_cost * commitment_loss + codebook_loss

            counts = torch.bincount(codes, minlength=self.num_embeddings).float()
            if self.training:
                counts = self._update(flat.detach(), codes, counts)
            probs = counts / counts.sum().clamp_min(1.0)
            perplexity = torch.exp(-(probs * torch.log(probs.clamp_min(1e-10))).sum())

            quantized = _StraightThrough.apply(z, quantized)

        return VectorQuantizerOutput(
            quantized=quantized,
            codes=codes.view(batch, height, width),
            loss=loss,
            commitment_loss=commitment_loss,
            codebook_loss=codebook_loss,
            perplexity=perplexity,
            usage=self.usage(),
        )

    def usage(self) -> torch.Tensor:
        """Fraction of the codebook chosen at least once in the last `usage_window` training steps."""
        recent = (self.last_used >= 0) & (self.step - self.last_used <= self.usage_window)
        return recent.float().mean()

    # ------------------------------------------------------------------------------------------------------------
    # training-time state updates

    @torch.no_grad()
    def _update(self, flat: torch.Tensor, codes: torch.LongTensor, counts: torch.Tensor) -> torch.Tensor:
        """One training step of codebook state. Returns the (all-ranks) code counts of this step."""
        if self.use_ema:
            # One all-reduce carries counts and sums: [n_i | sum_j z_ij] for every code i.
            stats = torch.zeros(self.num_embeddings, self.embedding_dim + 1, device=flat.device)
            stats[:, 0] = counts
            stats[:, 1:].index_add_(0, codes, flat)
            _all_reduce_sum(stats)
            counts, sums = stats[:, 0], stats[:, 1:]
            self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
            self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            total = self.ema_count.sum()
            smoothed = (self.ema_count + self.epsilon) / (total + self.num_embeddings * self.epsilon) * total
            self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))
        else:
            counts = _all_reduce_sum(counts.clone())
            decay = _COUNT_DECAY_WITHOUT_EMA
            self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)

        self.step += 1
        self.last_used.masked_fill_(counts > 0, int(self.step))
        if self.dead_code_threshold > 0:
            self._restart_dead_codes(flat)
        return counts

    @torch.no_grad()
    def _restart_dead_codes(self, flat: torch.Tensor) -> None:
        # ema_count is identical on every rank (it is built from all-reduced counts), so is the mask.
        dead = self.ema_count < self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0:
            return
        replacement = flat[torch.randint(0, flat.shape[0], (num_dead,), device=flat.device)]
        _broadcast_from_first_rank(replacement)
        self.codebook.data[dead] = replacement
        # A restarted code starts again from one pseudo-observation at its new position, like a fresh code.
        self.ema_count[dead] = 1.0
        if self.use_ema:
            self.ema_sum[dead] = replacement

    @torch.no_grad()
    def _kmeans_init(self, flat: torch.Tensor) -> None:
        """Lloyd's k-means on the first training batch; distributed, it runs on all ranks' vectors at once."""
        num_codes = self.num_embeddings
        # Seeds: K vectors of the first rank's batch (with replacement when the batch has fewer than K).
        replace = flat.shape[0] < num_codes
        if replace:
            index = torch.randint(0, flat.shape[0], (num_codes,), device=flat.device)
        else:
            index = torch.randperm(flat.shape[0], device=flat.device)[:num_codes]
        centroids = _broadcast_from_first_rank(flat[index].contiguous())
        counts = torch.ones(num_codes, device=flat.device)
        for _ in range(self.kmeans_iters):
            codes = self.nearest_codes(flat, centroids)
            stats = torch.zeros(num_codes, self.embedding_dim + 1, device=flat.device)
            stats[:, 0] = torch.bincount(codes, minlength=num_codes).float()
            stats[:, 1:].index_add_(0, codes, flat)
            _all_reduce_sum(stats)
            counts, sums = stats[:, 0], stats[:, 1:]
            # Empty clusters keep their seed rather than collapsing to the origin.
            filled = counts > 0
            centroids[filled] = sums[filled] / counts[filled].unsqueeze(1)
        self.codebook.data.copy_(centroids)
        if self.use_ema:
            self.ema_sum.copy_(centroids)
        self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

