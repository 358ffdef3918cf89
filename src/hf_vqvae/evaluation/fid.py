"""FID of a prior's decoded samples against held-out images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..metrics.functional import frechet_distance_from_features, inception_features
from ..sampling import generate_images, num_classes_of


def prior_fid(
    priors: Sequence,
    vq_model,
    reference_images: torch.Tensor,
    *,
    reference_labels: torch.Tensor | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> tuple[float, torch.Tensor]:
    """FID between as many generated images as there are `reference_images` (held-out real images in [-1, 1]) and
    those images. The images are sampled by `sampling.generate_images` through `priors` (top first) with `seed`; a
    class-conditional prior samples the reference images' own labels (`reference_labels`), so both sets have the
    same class mix. Returns the FID and the generated images.

    FID of small sets is biased upwards: compare values only at the same N.
    """
    samples = generate_images(
        priors,
        vq_model,
        len(reference_images),
        class_labels=reference_labels if num_classes_of(priors) is not None else None,
        batch_size=batch_size,
        seed=seed,
        device="cpu",
        progress=progress,
    ).float()
    # `frechet_inception_distance(samples, reference_images)`, with a progress bar: the Inception network is the
    # slow part (about 4 images/s on 2 CPU cores), and features of a chunk do not depend on the other chunks.
    features = [_inception_features(images, desc, progress) for images, desc in
                ((samples, "FID: samples"), (reference_images, "FID: held-out images"))]  # fmt: skip
    return frechet_distance_from_features(*features), samples


def _inception_features(images: torch.Tensor, desc: str, progress: bool, chunk: int = 64) -> torch.Tensor:
    """`inception_features(images)`, a chunk at a time under a tqdm bar."""
    parts = []
    with tqdm(total=len(images), desc=desc, unit="img", disable=not progress) as bar:
        for start in range(0, len(images), chunk):
            parts.append(inception_features(images[start : start + chunk]))
            bar.update(len(parts[-1]))
    return torch.cat(parts)


__all__ = ["prior_fid"]
