"""VQGenerationConfig as transformers' composite-config tooling meets it: built with no arguments, its VQ config
declared as a sub-config (read back from a bundle folder by the sub-config's own class), and what transformers sets
on sub-configs (dtype, attention implementation) reaching the priors too."""

from __future__ import annotations

import json

import pytest
import torch

from hf_vqvae import PixelSNAILConfig, VQVAE2Config, VQVAEConfig
from hf_vqvae.configuration_generation import VQGenerationConfig

SMALL = {"hidden_channels": 16, "residual_channels": 8, "num_embeddings": 16, "embedding_dim": 4}
PRIOR = {"hidden_channels": 16, "num_stages": 1, "num_residual_blocks": 1, "num_attention_heads": 2}


def two_level_bundle() -> VQGenerationConfig:
    vq = VQVAE2Config(image_size=16, downsample_factors=[8, 4], **SMALL)
    top = PixelSNAILConfig(num_embeddings=16, latent_height=2, latent_width=2, **PRIOR)
    bottom = PixelSNAILConfig(
        num_embeddings=16, latent_height=4, latent_width=4, condition_num_embeddings=16, condition_height=2,
        condition_width=2, **PRIOR,
    )  # fmt: skip
    return VQGenerationConfig(vq_config=vq, prior_configs=[top, bottom])


def test_builds_with_no_arguments_a_vqvae_and_a_prior_over_its_codes():
    config = VQGenerationConfig()
    assert isinstance(config.vq_config, VQVAEConfig) and len(config.prior_configs) == 1
    assert config.level_shapes == [(512, 32, 32)]
    prior = config.prior_configs[0]
    assert (prior.num_embeddings, *prior.latent_shape) == config.level_shapes[0] and not prior.is_conditional
    # Only the VQ config given: the default prior models its top level, here 1-D codes of an audio-like model.
    sequence = VQGenerationConfig(vq_config=VQVAEConfig(spatial_dims=1, image_size=64, downsample_factor=4, **SMALL))
    assert sequence.prior_configs[0].spatial_dims == 1 and sequence.prior_configs[0].latent_shape == (16,)
    with pytest.raises(ValueError, match="at least one PixelSNAIL config"):
        VQGenerationConfig(prior_configs=[])


def test_vq_config_is_a_sub_config_read_back_from_a_bundle_folder_by_its_own_class(tmp_path):
    assert VQGenerationConfig.sub_configs == {"vq_config": VQVAEConfig}
    config = two_level_bundle()
    assert config.sub_configs == {"vq_config": VQVAE2Config}
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["vq_config"]["model_type"] == "vqvae2" and len(saved["prior_configs"]) == 2

    loaded = VQGenerationConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    vq = VQVAE2Config.from_pretrained(tmp_path)  # transformers finds the sub-config by its model_type
    assert vq.to_dict() | {"transformers_version": None} == config.vq_config.to_dict() | {"transformers_version": None}


def test_dtype_and_attention_implementation_reach_every_sub_config_and_prior():
    config = two_level_bundle()
    config._attn_implementation = "eager"
    config.dtype = torch.bfloat16
    for sub_config in (config.vq_config, *config.prior_configs):
        assert sub_config._attn_implementation == "eager" and sub_config.dtype == torch.bfloat16
    rebuilt = VQGenerationConfig(**{**config.to_diff_dict(), "attn_implementation": "sdpa"})
    for sub_config in (rebuilt.vq_config, *rebuilt.prior_configs):
        assert sub_config._attn_implementation == "sdpa"
