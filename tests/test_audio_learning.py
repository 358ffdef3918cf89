"""Audio metrics against hand computations and real speech, and the audio VQ-VAE learning on real speech: after a
few dozen steps on two real voices its held-out NLL is below the mu-law unigram baseline."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from datasets import Audio, load_dataset
from huggingface_hub import ModelCard
from PIL import Image

from hf_vqvae import AudioVQVAEConfig, AudioVQVAEModel, VQVAEAudioFeatureExtractor
from hf_vqvae.audio_images import save_spectrogram_grid, spectrogram_image
from hf_vqvae.audio_metrics import (
    SpeakerClassifier,
    balanced_class_weights,
    code_bits_per_second,
    conversion_scores,
    mu_law_histogram,
    multi_resolution_stft_distance,
    stoi,
    unigram_nll,
)
from hf_vqvae.data.audio import AudioCollator
from hf_vqvae.data.speech import FILLETS_SOUND_ROOT, SPEAKER_NAMES, prepare_speech
from hf_vqvae.evaluation.speech import read_waveform
from hf_vqvae.hub.audio_card import write_audio_card
from hf_vqvae.training.audio import evaluate_audio_model

needs_fillets = pytest.mark.skipif(
    not FILLETS_SOUND_ROOT.is_dir(), reason="fillets-ng-data-cs is not installed (make speech-deps)"
)


@pytest.fixture(autouse=True)
def one_thread():
    """Audio work here is many small GEMMs and STFTs: with other jobs on the machine a second thread only adds
    synchronisation (the speaker classifier's fit is 20x slower with two threads on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_voices(tmp_path_factory):
    """The two lead voices of the Czech Fish Fillets dialogue (a woman and a man), 10 utterances each, one held
    out per voice: about a minute of real speech."""
    if not FILLETS_SOUND_ROOT.is_dir() or shutil.which("ffmpeg") is None:
        pytest.skip("fillets-ng-data-cs is not installed (make speech-deps)")
    folder = tmp_path_factory.mktemp("voices")
    prepare_speech(folder, sources=("fillets",), max_utterances_per_speaker=10, test_fraction=0.1, num_shards=1,
                   cache_dir=tmp_path_factory.mktemp("cache"), fetch_transcripts=False)  # fmt: skip
    rows = {
        split: list(load_dataset(str(folder), split=split).cast_column("audio", Audio(decode=False)))
        for split in ("train", "test")
    }
    return {**rows, "folder": folder}


def test_unigram_nll_and_bit_rate_against_hand_computation():
    counts = mu_law_histogram(torch.tensor([[0.0, 0.0, 1.0, -1.0]]))
    assert counts[128] == 2 and counts[255] == 1 and counts[0] == 1 and counts.sum() == 4
    assert unigram_nll(counts) == pytest.approx(-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)))
    masked = mu_law_histogram(torch.tensor([[0.0, 1.0]]), torch.tensor([[1, 0]]))
    assert masked.sum() == 1 and unigram_nll(masked) == 0.0
    assert code_bits_per_second(512, 250.0) == 9 * 250  # the paper's K = 512 at 16 kHz / 64


def test_conversion_scores_against_hand_computation():
    # Two speakers, two source clips (one of each). probabilities[s, n] is the classifier on clip n decoded as s.
    probabilities = torch.tensor(
        [
            [[0.9, 0.1], [0.7, 0.3]],  # decoded as speaker 0: clip 0's reconstruction, clip 1's conversion to 0
            [[0.4, 0.6], [0.2, 0.8]],  # decoded as speaker 1: clip 0's conversion to 1, clip 1's reconstruction
        ]
    )
    scores = conversion_scores(probabilities, torch.tensor([0, 1]))
    assert scores["reconstruction_accuracy"] == 1.0  # 0.9 names speaker 0, 0.8 names speaker 1
    # Conversions: clip 1 as speaker 0 (named: 0.7 > 0.3), clip 0 as speaker 1 (named: 0.6 > 0.4).
    assert scores["conversion_target_accuracy"] == 1.0
    assert scores["conversion_target_probability"] == pytest.approx((0.7 + 0.6) / 2)
    # p(target | conversion) - p(target | reconstruction): 0.7 - 0.2 for target 0, 0.6 - 0.1 for target 1.
    assert scores["conversion_target_shift"] == pytest.approx(0.5)
    assert scores["conversion_target_shift_se"] == pytest.approx(0.0, abs=1e-7)
    swapped = conversion_scores(probabilities.flip(0), torch.tensor([0, 1]))  # every voice decoded as the other
    assert swapped["reconstruction_accuracy"] == 0.0 and swapped["conversion_target_shift"] == pytest.approx(-0.5)
    with pytest.raises(ValueError, match=r"\(S, N, S\)"):
        conversion_scores(probabilities[:, :, :1], torch.tensor([0, 1]))


def test_balanced_class_weights_against_hand_computation():
    # 4 examples: three of class 0, one of class 1, none of class 2 -> 4 / (2 * 3), 4 / (2 * 1), 0.
    weights = balanced_class_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert torch.allclose(weights, torch.tensor([2 / 3, 2.0, 0.0]))
    assert weights[0] * 3 == pytest.approx(weights[1] * 1)  # each class present carries the same total weight


def _tone(hz: float, seed: int, seconds: float = 0.5, rate: int = 16000) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    return torch.sin(2 * math.pi * hz * t) + 0.05 * torch.randn(t.shape, generator=generator)


def test_speaker_classifier_standardised_on_inputs_reads_through_a_channel():
    """Two "voices" (tones at 300 and 2,000 Hz), 30 clips of one and 6 of the other. The same clips through a
    channel (a 20 dB quieter, low-passed recording) shift every clip's features alike: the classifier read as it is
    loses the quiet voice, and standardising the features on the channel's own clips recovers both voices."""
    clips = [_tone(300, seed) for seed in range(30)] + [_tone(2000, seed) for seed in range(30, 36)]
    labels = [0] * 30 + [1] * 6
    classifier = SpeakerClassifier(2).fit(clips, labels)
    evaluation = [_tone(300, seed) for seed in range(100, 106)] + [_tone(2000, seed) for seed in range(106, 112)]
    truth = torch.tensor([0] * 6 + [1] * 6)
    assert torch.equal(classifier.predict(evaluation), truth)
    smooth = torch.tensor([0.25, 0.5, 0.25])
    channel = [0.1 * torch.nn.functional.conv1d(c.view(1, 1, -1), smooth.view(1, 1, 3), padding=1).flatten()
               for c in evaluation]  # fmt: skip
    assert not torch.equal(classifier.predict(channel), truth)
    assert torch.equal(classifier.predict(channel, standardize_on_inputs=True), truth)
    # The standardisation is the inputs' own: a further gain on every clip changes nothing.
    louder = [4 * clip for clip in channel]
    assert torch.allclose(
        classifier.predict_proba(louder, standardize_on_inputs=True),
        classifier.predict_proba(channel, standardize_on_inputs=True),
        atol=1e-4,
    )
    with pytest.raises(ValueError, match="at least 2 clips"):
        classifier.predict_proba(channel[:1], standardize_on_inputs=True)


@needs_fillets
def test_reconstruction_metrics_on_real_speech(two_voices):
    speech = read_waveform(two_voices["test"][0])
    noise = torch.randn(speech.shape, generator=torch.Generator().manual_seed(0)) * speech.std()
    assert multi_resolution_stft_distance(speech, speech) == 0.0
    noisy = speech + 0.1 * noise
    assert 0 < multi_resolution_stft_distance(speech, noisy) < multi_resolution_stft_distance(speech, noise)
    assert stoi(speech, speech, 16000) == pytest.approx(1.0)
    assert stoi(speech, noise, 16000) < 0.5 < stoi(speech, noisy, 16000)
    with pytest.warns(UserWarning, match="0.4 s"):
        assert math.isnan(stoi(speech[:1000], speech[:1000], 16000))
    with pytest.raises(ValueError, match="shorter than the FFT size"):
        multi_resolution_stft_distance(speech[:100], speech[:100])


@pytest.mark.slow
@needs_fillets
def test_learns_real_speech_below_the_unigram_baseline(two_voices):
    torch.manual_seed(0)
    config = AudioVQVAEConfig(
        hidden_channels=32, residual_channels=16, num_residual_blocks=1, num_embeddings=64, embedding_dim=16,
        num_speakers=2, speaker_embedding_dim=16, condition_channels=32, condition_residual_blocks=1,
        wavenet_residual_channels=32, wavenet_gate_channels=32, wavenet_skip_channels=64, wavenet_num_layers=8,
        wavenet_dilation_cycle=8, segment_samples=2048,
    )  # fmt: skip
    model = AudioVQVAEModel(config)
    extractor = VQVAEAudioFeatureExtractor()
    # Speaker ids 4 and 5 of the speech dataset, renumbered 0 and 1 for a two-speaker model.
    rows = {
        split: [{**row, "speaker_id": row["speaker_id"] - 4} for row in two_voices[split]]
        for split in ("train", "test")
    }
    train_collate = AudioCollator(extractor, segment_samples=2048, random_crop=True)
    held_out = AudioCollator(extractor, segment_samples=16384, random_crop=False)(rows["test"])
    assert held_out["speaker_ids"].tolist() == [0, 1] and not held_out["skipped"]

    before = evaluate_audio_model(model, [held_out])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = np.random.default_rng(0)
    model.train()
    for _ in range(40):
        batch = train_collate([rows["train"][i] for i in generator.choice(len(rows["train"]), 4, replace=False)])
        loss = model(batch["input_values"], batch["speaker_ids"], batch["attention_mask"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = evaluate_audio_model(model, [held_out])

    baseline = after["eval/unigram_nll"]
    assert before["eval/unigram_nll"] == baseline  # the same held-out samples
    assert before["eval/nll"] > baseline  # an untrained WaveNet is no better than the histogram
    assert after["eval/nll"] < baseline - 0.3, (before, after)

    # Voice conversion: held-out clips of each voice, decoded with their own speaker id and with the other one. A
    # classifier fitted on real training audio only (never on model outputs) must move toward the target voice
    # when only the speaker id changes: p(target | conversion) above p(target | reconstruction of the same clip).
    model.eval()
    real_clips, real_labels = [], []
    for row in rows["train"]:
        audio = read_waveform(row)
        for start in range(0, len(audio) - 8000 + 1, 8000):
            real_clips.append(audio[start : start + 8000])
            real_labels.append(row["speaker_id"])
    classifier = SpeakerClassifier(2).fit(real_clips, real_labels)
    sources, speakers = [], []
    for row in rows["test"]:
        audio = read_waveform(row)
        for start in list(range(0, len(audio) - 8192 + 1, 8192))[:4]:
            sources.append(audio[start : start + 8192])
            speakers.append(row["speaker_id"])
    sources, speakers = torch.stack(sources), torch.tensor(speakers)
    assert speakers.tolist() == [0] * 4 + [1] * 4
    with torch.no_grad():
        codes = model.encode(sources).repeat(2, 1)
        decoded = model.decode(codes, torch.arange(2).repeat_interleave(8), generator=torch.Generator().manual_seed(0))
    probabilities = torch.stack([classifier.predict_proba(list(voice)) for voice in decoded.view(2, 8, -1)])
    scores = conversion_scores(probabilities, speakers)
    assert scores["conversion_target_shift"] > max(0.03, 2 * scores["conversion_target_shift_se"]), scores


TINY_TRAIN_CONFIG = {
    "hidden_channels": 16, "residual_channels": 8, "num_residual_blocks": 1, "num_embeddings": 16, "embedding_dim": 8,
    "speaker_embedding_dim": 8, "condition_channels": 16, "condition_residual_blocks": 1,
    "wavenet_residual_channels": 16, "wavenet_gate_channels": 16, "wavenet_skip_channels": 16,
    "wavenet_num_layers": 4, "wavenet_dilation_cycle": 4, "segment_samples": 1024,
}  # fmt: skip


@needs_fillets
def test_train_script_trains_the_audio_model(two_voices, tmp_path):
    """`scripts/train.py --model audio_vqvae` on the speech dataset: speakers from its ClassLabel, held-out
    evaluation with the unigram baseline, checkpoints, and a final folder that loads with the Auto classes."""
    import json

    from conftest import train_command
    from test_training import load_script
    from transformers import AutoFeatureExtractor, AutoModel

    train = load_script("train")
    output = tmp_path / "run"
    command = train_command(
        two_voices["folder"], output, model="audio_vqvae", model_config=json.dumps(TINY_TRAIN_CONFIG),
        per_device_train_batch_size=4, per_device_eval_batch_size=4, max_train_steps=4, eval_steps=2,
        checkpointing_steps=2, eval_samples=2, report_to="none",
    )  # fmt: skip
    train.main(train.parse_args(command))
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["train/steps"] == 4 and metrics["eval/samples"] == 2 * 1024
    assert metrics["eval/unigram_nll"] > 0 and metrics["eval/nll"] > 0
    assert sorted(p.name for p in output.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    model = AutoModel.from_pretrained(output)
    assert isinstance(model, AudioVQVAEModel)
    # Speakers come from the dataset's ClassLabel: all six names, of which this run heard two.
    assert model.config.speaker_names == list(SPEAKER_NAMES)
    assert isinstance(AutoFeatureExtractor.from_pretrained(output), VQVAEAudioFeatureExtractor)


@needs_fillets
def test_speaker_classifier_tells_real_voices_apart(two_voices):
    """Trained on 1 s crops of the training utterances, it names the speaker of held-out crops it never saw."""

    def crops(rows):
        clips, labels = [], []
        for row in rows:
            audio = read_waveform(row)
            for start in range(0, len(audio) - 16000 + 1, 16000):
                clips.append(audio[start : start + 16000])
                labels.append(row["speaker_id"] - 4)
        return clips, labels

    classifier = SpeakerClassifier(2).fit(*crops(two_voices["train"]))
    clips, labels = crops(two_voices["test"])
    assert len(set(labels)) == 2
    accuracy = (classifier.predict(clips) == torch.tensor(labels)).float().mean()
    assert accuracy >= 0.9, accuracy


def test_spectrogram_image_and_audio_card(tmp_path):
    rate = 16000
    tone = torch.sin(2 * math.pi * 1000 * torch.arange(rate) / rate)
    image = np.asarray(spectrogram_image(tone, rate))
    assert image.shape[0] == 80 and image.shape[2] == 3
    # The brightest row is the mel band around 1 kHz: band centres are evenly spaced in mel from 0 to Nyquist.
    mel = lambda hz: 2595 * math.log10(1 + hz / 700)  # noqa: E731
    band = round(mel(1000) / mel(rate / 2) * 81) - 1
    brightest = 79 - int(image.sum(axis=(1, 2)).argmax())  # row 0 is the top: high frequencies
    assert abs(brightest - band) <= 1
    grid = save_spectrogram_grid([[tone, tone], [tone, -tone]], tmp_path / "grid.png", rate)
    assert Image.open(grid).size[1] > 2 * 80

    path = write_audio_card(
        tmp_path, repo_id="org/audio", metrics=[("NLL", "4.1 (unigram 5.2)")],
        speakers=[{"id": 0, "name": "A", "description": "a voice", "licence": "CC-BY-3.0"}],
        examples=[("examples/a.wav", "A: original")], training="a while", reproduce="make demo-audio",
    )  # fmt: skip
    card = ModelCard.load(path)
    assert card.data.pipeline_tag == "audio-to-audio" and card.data.library_name == "transformers"
    assert card.data.widget == [{"src": "examples/a.wav", "example_title": "A: original"}]
    assert "| 0 | A | a voice | CC-BY-3.0 |" in card.text and "| NLL | 4.1 (unigram 5.2) |" in card.text
    assert 'pipeline("audio-to-audio", model="org/audio", trust_remote_code=True)' in card.text
