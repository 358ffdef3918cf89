"""The audio VQ-VAE (the paper's speech model): shapes and 64x compression, the likelihood, generation, voice
conversion, save/load and the Hub path without hf_vqvae installed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

from hf_vqvae import (
    AudioVQVAEAudioToAudioPipeline,
    AudioVQVAEConfig,
    AudioVQVAEFeatureExtractionPipeline,
    AudioVQVAEModel,
    VQVAEAudioFeatureExtractor,
)
from hf_vqvae.hub.pipelines import REPO_TASKS, add_pipelines
from hf_vqvae.wavenet import mu_law_encode

# Small enough for a forward pass in well under a second on 2 busy cores.
TINY_AUDIO = {
    "hidden_channels": 16,
    "residual_channels": 8,
    "num_residual_blocks": 1,
    "num_embeddings": 32,
    "embedding_dim": 8,
    "num_speakers": 3,
    "speaker_names": ["a", "b", "c"],
    "speaker_embedding_dim": 8,
    "condition_channels": 16,
    "condition_residual_blocks": 1,
    "wavenet_residual_channels": 16,
    "wavenet_gate_channels": 16,
    "wavenet_skip_channels": 16,
    "wavenet_num_layers": 4,
    "wavenet_dilation_cycle": 4,
    "segment_samples": 1024,
}


@pytest.fixture(autouse=True)
def one_thread():
    # Sample-by-sample generation is thousands of tiny ops; a second thread only adds synchronisation.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**overrides) -> AudioVQVAEModel:
    torch.manual_seed(0)
    return AudioVQVAEModel(AudioVQVAEConfig(**{**TINY_AUDIO, **overrides}))


def speechlike(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """Band-limited noise bursts: a waveform with the correlations a WaveNet can pick up."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(batch, 1, length, generator=generator)
    smooth = F.conv1d(noise, torch.ones(1, 1, 9) / 9, padding=4)[:, 0]
    envelope = 0.2 + 0.8 * torch.sin(torch.linspace(0, 6.28, length)).abs()
    return (smooth * envelope).clamp(-1, 1)


def test_shapes_compression_and_loss():
    model = tiny_model()
    waveform = speechlike(2, 2048)
    out = model(input_values=waveform, speaker_ids=torch.tensor([0, 2]))
    assert out.codes.shape == (2, 32)  # 2048 / 64: the paper's six stride-2 convolutions
    assert model.config.downsample_factor == 64 and len(model.encoder.downsample) // 2 == 6
    assert out.logits.shape == (2, 256, 2048)
    # The likelihood: mean nats of the mu-law class of each sample, computed here from the logits by hand.
    targets = mu_law_encode(waveform)
    log_probs = torch.log_softmax(out.logits, dim=1)
    assert torch.allclose(out.nll, -log_probs.gather(1, targets[:, None]).mean(), atol=1e-5)
    assert torch.allclose(out.loss, out.nll + 0.25 * out.commitment_loss + out.codebook_loss)
    # Padded samples do not count.
    mask = torch.ones(2, 2048, dtype=torch.long)
    mask[1, 1000:] = 0
    masked = model.eval()(input_values=waveform, speaker_ids=torch.tensor([0, 2]), attention_mask=mask)
    picked = -log_probs.gather(1, targets[:, None])[:, 0]
    expected = (picked[0].sum() + picked[1, :1000].sum()) / 3048
    assert torch.allclose(masked.nll, expected, atol=1e-5)
    # Training moves every parameter group.
    out.loss.backward()
    for name in ("encoder", "condition", "speaker_embedding", "decoder"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters()), name


def test_encode_decode_and_voice_conversion():
    model = tiny_model().eval()
    waveform = speechlike(2, 256)
    codes = model.encode(waveform)
    assert torch.equal(codes, model(input_values=waveform, speaker_ids=torch.tensor([0, 1])).codes)
    decoded = model.decode(codes, speaker_ids=torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert decoded.shape == (2, 256) and decoded.abs().max() <= 1.0
    naive = model.decode(
        codes, speaker_ids=torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0), use_cache=False
    )
    assert torch.equal(decoded, naive)
    # Conversion: the same codes and random draws, another speaker's id: another waveform.
    converted = model.convert_voice(waveform, 2, generator=torch.Generator().manual_seed(0))
    same = model.convert_voice(waveform, torch.tensor([0, 1]), generator=torch.Generator().manual_seed(0))
    assert torch.equal(same, decoded) and not torch.equal(converted, decoded)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_values": torch.zeros(1, 100), "speaker_ids": torch.tensor([0])}, "multiple of downsample_factor"),
        ({"input_values": torch.zeros(1, 2, 128), "speaker_ids": torch.tensor([0])}, r"mono waveforms \(B, T\)"),
        ({"input_values": torch.zeros(1, 128)}, "pass speaker_ids"),
        ({"input_values": torch.zeros(1, 128), "speaker_ids": torch.tensor([3])}, r"lie in \[0, 3\)"),
        ({"input_values": torch.zeros(2, 128), "speaker_ids": torch.tensor([0, 1, 2])}, r"shape \(2,\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_model()(**kwargs)


def test_config_validation():
    with pytest.raises(ValueError, match="speaker_names"):
        AudioVQVAEConfig(num_speakers=2, speaker_names=["only one"])
    with pytest.raises(ValueError, match="segment_samples"):
        AudioVQVAEConfig(segment_samples=1000)
    with pytest.raises(ValueError, match="downsample_factor"):
        AudioVQVAEConfig(downsample_factor=48)
    assert AudioVQVAEConfig().receptive_field == 2047 and AudioVQVAEConfig().latent_rate == 250.0


def test_save_load_round_trip_and_auto_classes(tmp_path):
    model = tiny_model()
    model.train()(input_values=speechlike(2, 1024), speaker_ids=torch.tensor([0, 1]))  # k-means init, EMA state
    model.eval()
    model.save_pretrained(tmp_path)
    VQVAEAudioFeatureExtractor().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "audio_vqvae" and "AutoModel" in config["auto_map"]
    assert "AutoFeatureExtractor" in json.loads((tmp_path / "preprocessor_config.json").read_text())["auto_map"]
    assert not list(tmp_path.glob("*.bin"))  # safetensors only
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, AudioVQVAEModel) and isinstance(AutoConfig.from_pretrained(tmp_path), AudioVQVAEConfig)
    assert_state_dicts_bitwise_equal(model.state_dict(), loaded.state_dict())
    extractor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(extractor, VQVAEAudioFeatureExtractor)
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 3000).astype(np.float32)
    inputs = extractor(audio, sampling_rate=22050, return_tensors="pt")
    with torch.no_grad():
        a = model(inputs.input_values, speaker_ids=1, attention_mask=inputs.attention_mask)
        b = loaded(inputs.input_values, speaker_ids=1, attention_mask=inputs.attention_mask)
    # Bitwise-equal weights; the logits agree to float rounding only, because the loaded tensors sit in the
    # safetensors file's memory at another alignment and MKL's GEMM picks its kernel by alignment (1e-7 here).
    assert torch.equal(a.codes, b.codes)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=1e-5)


def test_pipelines_reconstruct_convert_and_extract(tmp_path):
    model, extractor = tiny_model().eval(), VQVAEAudioFeatureExtractor()
    audio = np.sin(np.arange(1000) / 5.0).astype(np.float32) * 0.5
    path = tmp_path / "clip.wav"
    import soundfile

    soundfile.write(path, audio, 8000)  # 8 kHz file: resampled to 16 kHz, 2000 -> 2048 samples
    convert = AudioVQVAEAudioToAudioPipeline(model=model, feature_extractor=extractor)
    out = convert(str(path), source_speaker="b", seed=0)
    assert out["sampling_rate"] == 16000 and out["audio"].shape == (2048,) and out["audio"].dtype == np.float32
    inputs = extractor(audio, sampling_rate=8000, return_tensors="pt")
    codes = model.encode(inputs.input_values)
    expected = model.decode(codes, speaker_ids=1, generator=torch.Generator().manual_seed(0))[0].numpy()
    assert np.array_equal(out["audio"], expected)
    converted = convert({"array": audio, "sampling_rate": 8000}, source_speaker="b", target_speaker=2, seed=0)
    expected = model.decode(codes, speaker_ids=2, generator=torch.Generator().manual_seed(0))[0].numpy()
    assert np.array_equal(converted["audio"], expected)
    with pytest.raises(
        ValueError, match="unknown target_speaker 'nobody'; this model's speakers: \\['a', 'b', 'c'\\]"
    ):
        convert(str(path), target_speaker="nobody")
    with pytest.raises(ValueError, match="pass source_speaker="):
        convert(str(path))
    with pytest.raises(ValueError, match="sampling_rate="):
        convert(audio, source_speaker=0)
    extract = AudioVQVAEFeatureExtractionPipeline(model=model, feature_extractor=extractor)
    features = extract(str(path), return_tensors=True)
    assert torch.equal(features["codes"], codes[0]) and features["quantized"].shape == (8, 32)


def test_hub_round_trip_without_hf_vqvae(tmp_path, hf_home):
    """A user with transformers only: `AutoModel` / `AutoFeatureExtractor` and both pipelines by repo id with
    `trust_remote_code`, from the offline Hub cache; codes and logits equal the original's, and decoding works."""
    model = tiny_model().eval()
    model.save_pretrained(tmp_path / "repo")
    VQVAEAudioFeatureExtractor().save_pretrained(tmp_path / "repo")
    add_pipelines(tmp_path / "repo", REPO_TASKS["audio_vqvae"])
    place_in_hub_cache(tmp_path / "repo", "someone/audio-vqvae", hf_home)
    audio = np.sin(np.arange(4410) / 7.0).astype(np.float32) * 0.3
    inputs = VQVAEAudioFeatureExtractor()(audio, sampling_rate=44100, return_tensors="pt")
    with torch.no_grad():
        expected = model(inputs.input_values, speaker_ids=2)
    result = run_without_hf_vqvae(
        """
        import json, numpy as np, torch
        from transformers import AutoFeatureExtractor, AutoModel
        model = AutoModel.from_pretrained("someone/audio-vqvae", trust_remote_code=True).eval()
        extractor = AutoFeatureExtractor.from_pretrained("someone/audio-vqvae", trust_remote_code=True)
        audio = np.sin(np.arange(4410) / 7.0).astype(np.float32) * 0.3
        inputs = extractor(audio, sampling_rate=44100, return_tensors="pt")
        with torch.no_grad():
            out = model(inputs.input_values, speaker_ids=2)
        wave = model.decode(out.codes[:, :2], speaker_ids=0, generator=torch.Generator().manual_seed(0))
        from transformers import pipeline
        convert = pipeline("audio-to-audio", model="someone/audio-vqvae", trust_remote_code=True)
        converted = convert(audio, sampling_rate=44100, source_speaker="a", target_speaker="c", seed=0)
        extract = pipeline("feature-extraction", model="someone/audio-vqvae", trust_remote_code=True)
        print(json.dumps({"module": type(model).__module__, "codes": out.codes.tolist(),
                          "logit_sum": float(out.logits.double().sum()), "wave": list(wave.shape),
                          "converted": [len(converted["audio"]), converted["sampling_rate"]],
                          "pipelines": [type(convert).__name__, type(extract).__name__],
                          "extracted": extract(audio, sampling_rate=44100)["codes"]}))
        """
    )
    assert result["module"].startswith("transformers_modules.")
    assert result["codes"] == expected.codes.tolist()
    assert result["logit_sum"] == pytest.approx(float(expected.logits.double().sum()), rel=1e-6)
    assert result["wave"] == [1, 128]
    assert result["converted"] == [1600, 16000]
    assert result["pipelines"] == ["AudioVQVAEAudioToAudioPipeline", "AudioVQVAEFeatureExtractionPipeline"]
    assert result["extracted"] == expected.codes[0].tolist()
