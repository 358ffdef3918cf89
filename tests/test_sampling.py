"""The one sampling entry point, `hf_vqvae.sampling.generate_images`: codes decode at their own levels, lower priors
are conditioned on the codes above them, and class labels default to every class in turn."""

from __future__ import annotations

import pytest
import torch

from hf_vqvae import PixelSNAILConfig, PixelSNAILModel, VQVAE2Config, VQVAE2Model
from hf_vqvae.sampling import class_labels_for, default_class_labels, generate_images

SMALL_PRIOR = {"hidden_channels": 16, "num_stages": 1, "num_residual_blocks": 1, "kernel_size": 3}


@pytest.fixture(scope="module")
def hierarchy() -> VQVAE2Model:
    """Three levels over 16x16 images: 2x2 top, 4x4 middle, 8x8 bottom maps."""
    torch.manual_seed(0)
    config = VQVAE2Config(image_size=16, hidden_channels=16, residual_channels=8, downsample_factors=[8, 4, 2],
                          num_embeddings=[8, 16, 32], embedding_dim=8)  # fmt: skip
    return VQVAE2Model(config).eval()


def test_a_middle_prior_decodes_at_its_own_level(hierarchy):
    # Training pictures a lower prior on the real codes of the level above: the samples must decode as the middle
    # level (the top given, the bottom left out), not as the top one.
    torch.manual_seed(1)
    middle = PixelSNAILModel(
        PixelSNAILConfig(num_embeddings=16, latent_height=4, latent_width=4, attention=False, num_classes=3,
                         condition_num_embeddings=8, condition_height=2, condition_width=2, num_condition_blocks=1,
                         **SMALL_PRIOR)
    ).eval()  # fmt: skip
    top = hierarchy.encode_levels(torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1)[0]
    pixels, (codes,) = generate_images(
        [middle], hierarchy, 3, condition=top, generator=torch.Generator().manual_seed(3), return_codes=True
    )
    expected_codes = middle.generate(
        3, condition=top, class_labels=torch.tensor([0, 1, 2]), generator=torch.Generator().manual_seed(3)
    )
    assert torch.equal(codes, expected_codes)  # conditioned on the given codes, classes in turn
    assert torch.equal(pixels, hierarchy.decode_levels([top, codes, None]).clamp(-1, 1))
    assert not torch.equal(pixels, hierarchy.decode_levels([top, None, None]).clamp(-1, 1))
    # In batches, the condition and the labels cut along: the first batch is what a call for it alone gives.
    batched = generate_images([middle], hierarchy, 3, condition=top, seed=4, batch_size=2)
    first = generate_images([middle], hierarchy, 2, condition=top[:2], seed=4)
    assert batched.shape == (3, 3, 16, 16) and torch.equal(batched[:2], first)

    with pytest.raises(ValueError, match="prior 0 is conditional"):
        generate_images([middle], hierarchy, 2)
    with pytest.raises(ValueError, match=r"3 level\(s\): 2 code map\(s\) from level 2 do not fit"):
        generate_images([middle], hierarchy, 3, condition=top[:3], first_level=3)


def test_class_labels_default_to_every_class_in_turn():
    conditional = PixelSNAILModel(PixelSNAILConfig(num_embeddings=8, latent_height=2, latent_width=2, num_classes=3,
                                                   num_attention_heads=2, **SMALL_PRIOR))  # fmt: skip
    unconditional = PixelSNAILModel(PixelSNAILConfig(num_embeddings=8, latent_height=2, latent_width=2,
                                                     num_attention_heads=2, **SMALL_PRIOR))  # fmt: skip
    assert default_class_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert class_labels_for([conditional], 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert class_labels_for([conditional], 4, 2).tolist() == [2, 2, 2, 2]
    assert class_labels_for([conditional], 2, [1, 0]).tolist() == [1, 0]
    assert class_labels_for([unconditional], 4) is None
    with pytest.raises(ValueError, match=r"class_labels.*lie in \[0, 3\)"):
        class_labels_for([conditional], 2, [1, 3])
    with pytest.raises(ValueError, match="one label or 4"):
        class_labels_for([conditional], 4, [1, 2])
    with pytest.raises(ValueError, match="not class-conditional"):
        class_labels_for([unconditional], 4, 1)
