"""Real offline speech (`prepare_data.py --source speech`), the audio feature extractor and the audio collator's
handling of bad audio."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sys

import numpy as np
import pytest
import soundfile
import torch
from conftest import REPO
from datasets import Audio, load_dataset

from hf_vqvae.data.audio import AudioCollator, BadAudioError, decode_audio
from hf_vqvae.data.speech import ASTERISK_ROOT, FILLETS_SOUND_ROOT, SPEAKER_NAMES, default_cache_dir, prepare_speech
from hf_vqvae.feature_extraction_audio import VQVAEAudioFeatureExtractor

needs_speech = pytest.mark.skipif(
    not (ASTERISK_ROOT.is_dir() and FILLETS_SOUND_ROOT.is_dir() and shutil.which("ffmpeg")),
    reason="the Debian speech packages are not installed (make speech-deps)",
)


@pytest.fixture(scope="session")
def speech_dataset(tmp_path_factory):
    """3 utterances per speaker (1 held out), decoded from the Debian packages into a fresh cache. Transcripts come
    from the cache `make speech-deps` fills (no network in tests)."""
    cache = tmp_path_factory.mktemp("speech-cache")
    for cached in default_cache_dir().glob("transcripts-*.json"):
        shutil.copy(cached, cache)
    folder = tmp_path_factory.mktemp("speech")
    info = prepare_speech(folder, max_utterances_per_speaker=3, num_shards=2, cache_dir=cache, fetch_transcripts=False)
    return folder, info, cache


@needs_speech
def test_prepare_speech_writes_six_real_speakers_with_held_out_utterances(speech_dataset):
    folder, info, _ = speech_dataset
    # 3 per speaker, 1 of each held out; a prompt held out for one Asterisk voice is held out for all (here one
    # more of Allison Smith's).
    assert info["splits"] == {"train": 11, "test": 7}
    assert json.loads((folder / "dataset_info.json").read_text())["splits"] == info["splits"]
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00002.parquet", "test-00001-of-00002.parquet",
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet",
    ]  # fmt: skip
    splits = {}
    for split in ("train", "test"):
        stream = load_dataset(str(folder), split=split, streaming=True)
        assert isinstance(stream.features["audio"], Audio)
        assert stream.features["speaker_id"].names == list(SPEAKER_NAMES)
        splits[split] = list(stream.cast_column("audio", Audio(decode=False)))
    for rows in splits.values():
        assert {row["speaker_id"] for row in rows} == set(range(6))
        for row in rows:
            samples, rate = soundfile.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
            assert rate == 16000 and samples.ndim == 1
            assert abs(len(samples) / rate - row["duration"]) < 1e-3 and row["duration"] >= 0.2
            assert np.abs(samples).max() > 0.01  # speech, not silence
            assert row["speaker"] == SPEAKER_NAMES[row["speaker_id"]]
            assert row["licence"] in {"CC-BY-SA-3.0", "CC-BY-3.0", "GPL-2.0-only"}
            assert row["language"] in {"en", "es", "fr", "it", "ru", "cs"}
            if row["language"] == "cs" or (default_cache_dir() / f"transcripts-{row['language']}.json").exists():
                assert row["transcript"], row["id"]
    prompt = lambda row: row["id"].split("/", 1)[1]  # noqa: E731
    assert not {prompt(row) for row in splits["train"]} & {prompt(row) for row in splits["test"]}
    assert sorted(row["speaker_id"] for row in splits["train"]) == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


@needs_speech
def test_prepare_speech_cli(tmp_path, speech_dataset, monkeypatch, capsys):
    """The script's `--source speech` path (in this process), from the cache the fixture filled."""
    spec = importlib.util.spec_from_file_location("prepare_data", REPO / "scripts" / "prepare_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(
        sys, "argv",
        ["prepare_data.py", "--source", "speech", "--output_dir", str(tmp_path), "--max_utterances_per_speaker", "3",
         "--speech_cache_dir", str(speech_dataset[2]), "--speech_sources", "fillets", "--num_shards", "1"],
    )  # fmt: skip
    script.main()
    assert "{'train': 4, 'test': 2}" in capsys.readouterr().out
    info = json.loads((tmp_path / "dataset_info.json").read_text())
    assert set(info["train_per_speaker"]) == {"Fish Fillets small fish", "Fish Fillets big fish"}


def test_feature_extractor_resamples_mixes_and_pads():
    extractor = VQVAEAudioFeatureExtractor()
    rate = 44100
    t = np.arange(rate) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone * 0.0]).astype(np.float32)  # (channels, T): mixed to tone / 2
    batch = extractor(stereo, sampling_rate=rate, return_tensors="pt")
    assert batch.input_values.shape == (1, 16000) and batch.input_values.dtype == torch.float32
    values = batch.input_values[0].numpy()
    assert np.argmax(np.abs(np.fft.rfft(values))) == 440  # 1 s at 16 kHz: bin k is k Hz
    assert abs(np.abs(values[1000:-1000]).max() - 0.25) < 0.01
    # (T, channels) is read the same way.
    again = extractor(stereo.T.copy(), sampling_rate=rate, return_tensors="pt").input_values
    assert torch.allclose(again, batch.input_values)

    # A batch: PCM int16 scaled by full scale, padded with silence to a multiple of 64, masked.
    pcm = np.array([16384, -32768, 32767], dtype=np.int16)
    batch = extractor([pcm, np.full(100, 2.0, dtype=np.float32)], sampling_rate=16000, return_tensors="pt")
    assert batch.input_values.shape == (2, 128)
    assert batch.input_values[0, :3].tolist() == [0.5, -1.0, 32767 / 32768]
    assert torch.all(batch.input_values[0, 3:] == 0) and torch.all(batch.input_values[1, :100] == 1.0)  # clipped
    assert batch.attention_mask.sum(1).tolist() == [3, 100]
    # Examples carrying their own rate, as `datasets` decodes them.
    mixed = extractor(
        [{"array": tone[:4410], "sampling_rate": rate}, {"array": np.zeros(160), "sampling_rate": 16000}]
    )
    assert [int(m.sum()) for m in mixed["attention_mask"]] == [1600, 160]


@pytest.mark.parametrize(
    ("audio", "kwargs", "message"),
    [
        (np.zeros(0, dtype=np.float32), {"sampling_rate": 16000}, "empty"),
        (np.array([0.1, np.nan], dtype=np.float32), {"sampling_rate": 16000}, "1 NaN or infinite"),
        (np.zeros(10), {}, "no sampling rate"),
        (np.zeros(10), {"sampling_rate": 0}, "positive integer"),
        (np.zeros((2, 2, 10)), {"sampling_rate": 16000}, "1-D or 2-D"),
        (np.array(["a", "b"]), {"sampling_rate": 16000}, "real numbers"),
    ],
)
def test_feature_extractor_rejects_bad_audio_clearly(audio, kwargs, message):
    with pytest.raises(ValueError, match=message):
        VQVAEAudioFeatureExtractor()(audio, **kwargs)


def test_feature_extractor_save_load_round_trip(tmp_path):
    extractor = VQVAEAudioFeatureExtractor(pad_to_multiple_of=32)
    extractor.save_pretrained(tmp_path)
    loaded = VQVAEAudioFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict() and loaded.pad_to_multiple_of == 32
    audio = np.random.default_rng(0).uniform(-1, 1, 1000).astype(np.float32)
    assert np.array_equal(
        loaded(audio, sampling_rate=22050)["input_values"][0], extractor(audio, 22050)["input_values"][0]
    )


def _flac(samples: np.ndarray, rate: int = 16000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="FLAC")
    return buffer.getvalue()


def test_bad_audio_is_skipped_with_a_count():
    rng = np.random.default_rng(0)
    good = _flac(rng.uniform(-0.5, 0.5, 3000).astype(np.float32))
    stereo_22k = _flac(rng.uniform(-0.5, 0.5, (2205, 2)).astype(np.float32), 22050)
    examples = [
        {"id": "good", "audio": {"bytes": good, "path": None}, "speaker_id": 1},
        {"id": "stereo", "audio": {"bytes": stereo_22k, "path": None}, "speaker_id": 2},  # mixed and resampled
        {"id": "empty", "audio": {"bytes": b"", "path": None}, "speaker_id": 0},
        {"id": "cut", "audio": {"bytes": good[: len(good) // 2], "path": None}, "speaker_id": 0},
        {"id": "text", "audio": {"bytes": b"not audio at all" * 10, "path": None}, "speaker_id": 0},
        {"id": "slow", "audio": {"array": np.zeros(100), "sampling_rate": 100}, "speaker_id": 0},
        {"id": "nan", "audio": {"array": np.array([0.0, np.nan] * 50), "sampling_rate": 16000}, "speaker_id": 0},
        {"id": "anonymous", "audio": {"bytes": good, "path": None}, "speaker_id": None},
    ]
    collator = AudioCollator(VQVAEAudioFeatureExtractor(), segment_samples=1024, random_crop=False)
    batch = collator(examples)
    assert batch["skipped"] == {"empty": 1, "truncated": 1, "not_audio": 1, "bad_rate": 1, "not_finite": 1,
                                "no_speaker": 1}  # fmt: skip
    assert batch["num_examples"] == 8 and batch["positions"] == [0, 1]
    assert batch["speaker_ids"].tolist() == [1, 2]
    assert batch["input_values"].shape == (2, 1024) and batch["attention_mask"].sum().item() == 2048
    assert any(line.startswith("id cut: truncated") for line in batch["bad_examples"])
    # The middle 1024 of the good clip's 3000 samples (FLAC is lossless up to 16-bit rounding).
    decoded, _ = decode_audio({"bytes": good})
    assert np.allclose(batch["input_values"][0].numpy(), decoded[988:2012, 0])
    with pytest.raises(BadAudioError, match="zero bytes"):
        decode_audio(b"")
    with pytest.raises(ValueError, match="multiple of 64"):
        AudioCollator(VQVAEAudioFeatureExtractor(), segment_samples=1000)
