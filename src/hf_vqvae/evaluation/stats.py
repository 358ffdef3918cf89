"""Running sums of evaluation figures, kept so that distributed ranks add theirs up before the figures are computed.

Every formula is the one in `hf_vqvae.metrics.functional`; these classes only accumulate over batches. The one
evaluation loop (`evaluation.loops`) and training's periodic evaluation both use them through that loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..metrics.functional import (
    RECONSTRUCTION_SIGMAS,
    bits_per_code,
    bits_per_dim,
    code_histogram,
    code_nll,
    codebook_fraction_used,
    codebook_perplexity,
    discretized_gaussian_nll_sweep,
    psnr_per_image,
    ssim_per_image,
)
from .model_index import level_metric_key

# PSNR of an image reconstructed exactly is infinite; it counts as this many dB so that one such image does not make
# the mean over a set infinite.
MAX_PSNR = 100.0


class _SummedStats:
    """Figures kept as running sums in one float64 vector whose first entry counts the images: distributed ranks
    each sum their share and add the vectors (`accelerator.reduce(stats.state(), "sum")`) before `compute`."""

    _sums: torch.Tensor

    def state(self) -> torch.Tensor:
        """A copy of the sums: add the vectors of several ranks elementwise."""
        return self._sums.clone()

    def load_state(self, state: torch.Tensor) -> None:
        """Replaces the sums, e.g. by their total over ranks."""
        if state.shape != self._sums.shape:
            raise ValueError(f"state of shape {tuple(state.shape)} does not fit these stats {tuple(self._sums.shape)}")
        self._sums = state.detach().to("cpu", torch.float64).clone()

    def reduce(self, accelerator) -> None:
        """Replaces this rank's sums by their total over every rank of `accelerator` (an `accelerate.Accelerator`;
        a no-op with one process). Every rank must call it."""
        if accelerator.num_processes > 1:
            self.load_state(accelerator.reduce(self.state().to(accelerator.device), "sum").cpu())

    @property
    def num_images(self) -> int:
        return int(self._sums[0])


class ReconstructionStats(_SummedStats):
    """Running sums, over an evaluation set, of a VQ model's reconstruction quality and code usage.

    The sums live in one float64 vector (`state`), so that distributed ranks add theirs up before `compute`:

    ```python
    stats = ReconstructionStats(model.config.level_num_embeddings)
    for pixels in loader:
        output = model(pixel_values=pixels)
        stats.update(pixels, output.reconstruction.clamp(-1, 1), output.level_codes)
    stats.reduce(accelerator)  # when distributed: every rank then holds the sums over all ranks
    stats.compute()  # {"mse", "psnr", "ssim", "reconstruction_bits_per_dim", ..., "perplexity", "codebook_used"}
    ```

    Args:
        num_codes: codebook size of each level, top first (`config.level_num_embeddings`).
        ssim: also sum SSIM (float64 convolutions: the slowest figure but the likelihood).
        likelihood: also sum the decoder's discretised-Gaussian NLL for every standard deviation of
            `RECONSTRUCTION_SIGMAS` (`metrics.functional.discretized_gaussian_nll_sweep`); `compute` reports the best.
    """

    def __init__(self, num_codes: Sequence[int], *, ssim: bool = True, likelihood: bool = True) -> None:
        self.num_codes = [int(k) for k in num_codes]
        self.ssim, self.likelihood = ssim, likelihood
        self.sigmas = RECONSTRUCTION_SIGMAS if likelihood else ()
        # [images, pixel values, squared error, PSNR, SSIM, NLL per sigma..., histogram of each level...]
        self._sums = torch.zeros(5 + len(self.sigmas) + sum(self.num_codes), dtype=torch.float64)

    def update(self, pixels: torch.Tensor, reconstruction: torch.Tensor, codes: Sequence[torch.Tensor]) -> None:
        """Adds a batch: `pixels` and `reconstruction` `(B, C, H, W)` in [-1, 1] (clamp the reconstruction first: it
        is what a user sees), `codes` the `(B, h, w)` code map of each level, top first (`output.level_codes`)."""
        if isinstance(codes, torch.Tensor) or len(codes) != len(self.num_codes):
            got = f"a {type(codes).__name__}" if isinstance(codes, torch.Tensor) else f"{len(codes)} entries"
            raise ValueError(f"codes must hold one code map per level ({len(self.num_codes)}, top first), got {got}")
        if len(pixels) == 0:
            return
        sums = self._sums
        per_image_error = (reconstruction.double() - pixels.double()).square().flatten(1)
        sums[0] += len(pixels)
        sums[1] += per_image_error.numel()
        sums[2] += float(per_image_error.sum())
        sums[3] += float(psnr_per_image(reconstruction, pixels).clamp_max(MAX_PSNR).sum())
        if self.ssim:
            sums[4] += float(ssim_per_image(reconstruction, pixels).sum())
        if self.likelihood:
            sums[5 : 5 + len(self.sigmas)] += discretized_gaussian_nll_sweep(reconstruction, pixels, self.sigmas).cpu()
        offset = 5 + len(self.sigmas)
        for level_codes, k in zip(codes, self.num_codes):
            sums[offset : offset + k] += code_histogram(level_codes, k).cpu().double()
            offset += k

    def compute(self) -> dict[str, float]:
        """Over every image added: `mse` (mean over all pixel values), `psnr` and `ssim` (means of the per-image
        values), `reconstruction_bits_per_dim` (`-log2 p(x | z)` per pixel value at the best standard deviation,
        reported as `reconstruction_sigma`), and per level `perplexity` and `codebook_used` of the histogram of
        every code (levels of a hierarchy prefixed `level{i}_`, top first). Empty stats give `{}`."""
        sums = self._sums
        images, values = float(sums[0]), float(sums[1])
        if images == 0:
            return {}
        metrics = {"mse": float(sums[2]) / values, "psnr": float(sums[3]) / images}
        if self.ssim:
            metrics["ssim"] = float(sums[4]) / images
        if self.likelihood:
            nll = sums[5 : 5 + len(self.sigmas)]
            best = int(torch.argmin(nll))
            metrics["reconstruction_bits_per_dim"] = bits_per_dim(float(nll[best]), int(values))
            metrics["reconstruction_sigma"] = self.sigmas[best]
        offset = 5 + len(self.sigmas)
        for level, k in enumerate(self.num_codes):
            histogram = sums[offset : offset + k]
            offset += k
            metrics[level_metric_key("perplexity", level, len(self.num_codes))] = codebook_perplexity(histogram)
            metrics[level_metric_key("codebook_used", level, len(self.num_codes))] = codebook_fraction_used(histogram)
        return metrics


class PriorNLLStats(_SummedStats):
    """Running sums of a prior's negative log-likelihood over code maps, in one float64 vector (`state`) that
    distributed ranks add up, as `ReconstructionStats`.

    Args:
        image_dims: `C * H * W` of the images the codes encode, for bits per image dimension.
    """

    def __init__(self, image_dims: int) -> None:
        self.image_dims = int(image_dims)
        self._sums = torch.zeros(3, dtype=torch.float64)  # [code maps, NLL in nats, codes]

    def update(self, logits: torch.Tensor, codes: torch.Tensor) -> None:
        """Adds a batch: the prior's `logits` `(B, K, h, w)` for the observed `codes` `(B, h, w)`."""
        self._sums += torch.tensor([len(codes), float(code_nll(logits.double(), codes).sum()), codes.numel()],
                                   dtype=torch.float64)  # fmt: skip

    def compute(self) -> dict[str, float]:
        """`nll_nats_per_code` and `bits_per_code` (means over every code), `bits_per_dim` (the codes' total NLL over
        the images' pixel dimensions); `{}` when empty."""
        images, nll, num_codes = (float(value) for value in self._sums)
        if images == 0:
            return {}
        return {
            "nll_nats_per_code": nll / num_codes,
            "bits_per_code": bits_per_code(nll, int(num_codes)),
            "bits_per_dim": bits_per_dim(nll, int(images) * self.image_dims),
        }


__all__ = ["MAX_PSNR", "PriorNLLStats", "ReconstructionStats"]
