"""The speech model's prior path on real speech (two voices of the Fish Fillets dialogue): scripts/extract_codes.py
gives 1-D code sequences of fixed crops with the speaker as the label, a speaker-conditional 1-D PixelSNAIL trains on
them through scripts/train.py, the VQ model and prior bundle into one Hub folder that generates speech (the same
waveform through the model, the pipeline and trust_remote_code without hf_vqvae), and scripts/sample.py writes WAVs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from conftest import assert_state_dicts_bitwise_equal, place_in_hub_cache, run_without_hf_vqvae, train_command
from datasets import load_dataset
from huggingface_hub import ModelCard
from test_audio_learning import needs_fillets, two_voices  # noqa: F401 (a fixture)
from test_audio_vqvae import TINY_AUDIO, one_thread  # noqa: F401 (an autouse fixture: one thread here too)
from test_evaluate import load_script
from transformers import AutoModel, pipeline
from user_data import TINY_PRIOR

from hf_vqvae import (
    AudioVQVAEConfig,
    AudioVQVAEModel,
    PixelSNAILConfig,
    PixelSNAILModel,
    VQGenerationConfig,
    VQGenerationModel,
    VQVAEAudioFeatureExtractor,
)
from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.data import CodeCollator
from hf_vqvae.data.audio import AudioCollator
from hf_vqvae.data.sources import HeldOut
from hf_vqvae.data.speech import SPEAKER_NAMES, SPEAKERS, write_speech_shards
from hf_vqvae.hub.pipelines import add_pipelines, repo_tasks
from hf_vqvae.repo_kinds import repo_kind
from hf_vqvae.space import DEMO_APPS, demo_app

# 8 codes per crop: the WaveNet samples one waveform sample per step, so generated clips stay short (512 samples).
SEGMENT = 512


@pytest.fixture(scope="module")
def audio_model_dir(tmp_path_factory):
    """A tiny untrained audio VQ-VAE over the speech dataset's speakers, saved as a training run saves it (no
    feature extractor beside it)."""
    torch.manual_seed(0)
    names = list(SPEAKER_NAMES)
    config = AudioVQVAEConfig(**{**TINY_AUDIO, "num_speakers": len(names), "speaker_names": names})
    folder = tmp_path_factory.mktemp("audio_vq")
    AudioVQVAEModel(config).eval().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def audio_codes(two_voices, audio_model_dir, tmp_path_factory):  # noqa: F811
    output = tmp_path_factory.mktemp("audio_codes")
    argv = ["extract_codes.py", "--model_name_or_path", str(audio_model_dir), "--dataset", str(two_voices["folder"]),
            "--output_dir", str(output), "--segment_samples", str(SEGMENT), "--num_workers", "0",
            "--batch_size", "8"]  # fmt: skip
    saved, sys.argv = sys.argv, argv
    try:
        assert load_script("extract_codes").run() == 0
    finally:
        sys.argv = saved
    return output


@needs_fillets
def test_extract_codes_gives_the_models_codes_of_the_middle_crops(two_voices, audio_model_dir, audio_codes):  # noqa: F811
    info = CodesInfo.read(audio_codes)
    assert info.is_audio and info.columns == ["codes"] and info.levels[0].shape == (SEGMENT // 64,)
    assert info.label_column == "speaker_id" and info.num_classes == len(SPEAKER_NAMES)
    assert info.extra["class_names"] == list(SPEAKER_NAMES) and info.extra["crop"] == "middle"
    assert info.image_shape == [1, SEGMENT] and info.image_dims == SEGMENT
    assert info.splits["train"] == {"examples": len(two_voices["train"]), "skipped": 0}
    assert info.splits["test"] == {"examples": len(two_voices["test"]), "skipped": 0}
    # The same crops encoded here, independently of the script: the middle SEGMENT samples at 16 kHz.
    model = AudioVQVAEModel.from_pretrained(audio_model_dir).eval()
    extractor = VQVAEAudioFeatureExtractor(pad_to_multiple_of=64)
    collate = AudioCollator(extractor, "audio", "speaker_id", segment_samples=SEGMENT, random_crop=False)
    for split in ("train", "test"):
        rows = two_voices[split]
        batch = collate(rows)
        codes = load_dataset(str(audio_codes), split=split).with_format("numpy")
        assert np.asarray(codes["codes"]).shape == (len(rows), SEGMENT // 64)
        assert torch.equal(torch.as_tensor(np.asarray(codes["codes"])).long(), model.encode(batch["input_values"]))
        assert list(codes["speaker_id"]) == [row["speaker_id"] for row in rows]


@needs_fillets
def test_extract_codes_holds_out_and_counts_bad_audio_as_training_does(two_voices, audio_model_dir, tmp_path):  # noqa: F811
    """A train-only speech folder with one truncated file: the codes' `validation` split is the share that training
    holds out (the same hash rule), and the bad file is skipped and counted, not fatal."""
    rows = [dict(row) for row in two_voices["train"]]
    bad = dict(rows[0], id="truncated", audio={"bytes": rows[0]["audio"]["bytes"][:2000], "path": "truncated.flac"})
    write_speech_shards([*rows, bad], tmp_path / "speech", "train", num_shards=1)
    output = tmp_path / "codes"
    argv = ["extract_codes.py", "--model_name_or_path", str(audio_model_dir), "--dataset", str(tmp_path / "speech"),
            "--output_dir", str(output), "--segment_samples", str(SEGMENT), "--validation_split_percentage", "30",
            "--max_skipped_fraction", "0.2", "--num_workers", "0"]  # fmt: skip
    saved, sys.argv = sys.argv, argv
    try:
        assert load_script("extract_codes").run() == 0
    finally:
        sys.argv = saved
    held_out = HeldOut(30.0, "id")  # what open_dataset holds out of a speech dataset's train split (by its id)
    expected = {
        "validation": [row for row in rows if held_out(row)],
        "train": [row for row in rows if not held_out(row)],
    }
    assert expected["validation"] and expected["train"]
    info = CodesInfo.read(output)
    assert sum(split["skipped"] for split in info.splits.values()) == 1
    model = AudioVQVAEModel.from_pretrained(audio_model_dir).eval()
    collate = AudioCollator(
        VQVAEAudioFeatureExtractor(pad_to_multiple_of=64), segment_samples=SEGMENT, random_crop=False
    )
    for split, split_rows in expected.items():
        assert info.splits[split]["examples"] == len(split_rows)
        codes = np.asarray(load_dataset(str(output), split=split).with_format("numpy")["codes"])
        assert torch.equal(torch.as_tensor(codes).long(), model.encode(collate(split_rows)["input_values"]))


@pytest.fixture(scope="module")
def audio_prior(audio_codes, tmp_path_factory):
    """A speaker-conditional 1-D PixelSNAIL after 3 steps of scripts/train.py on the code sequences."""
    output = tmp_path_factory.mktemp("audio_prior")
    train = load_script("train")
    command = train_command(
        audio_codes, output, model="pixelsnail", model_config=json.dumps(TINY_PRIOR), class_conditional=True,
        eval_steps=2, eval_samples=4, per_device_eval_batch_size=4,
    )  # fmt: skip
    train.main(train.parse_args(command))
    return output


@needs_fillets
def test_a_speaker_conditional_sequence_prior_trains_on_the_codes(audio_codes, audio_prior):
    prior = PixelSNAILModel.from_pretrained(audio_prior)
    config = prior.config
    assert config.spatial_dims == 1 and config.latent_length == SEGMENT // 64
    assert config.num_classes == len(SPEAKER_NAMES) and config.num_embeddings == TINY_AUDIO["num_embeddings"]
    metrics = json.loads((audio_prior / "metrics.json").read_text())
    assert metrics["train/steps"] == 3 and metrics["train/skipped_examples"] == 0
    # Evaluated on the codes of the held-out utterances (the speech dataset's test split), in bits per code.
    assert metrics["eval/num_images"] == 2 and np.isfinite(metrics["eval/bits_per_code"])
    # Which VQ model and codes it belongs to, for sampling and bundling.
    info = CodesInfo.read(audio_prior, repo_type="model")
    assert (
        info.is_audio and info.prior.code_column == "codes" and info.vq_model == CodesInfo.read(audio_codes).vq_model
    )


@pytest.fixture(scope="module")
def audio_bundle(audio_model_dir, audio_prior, tmp_path_factory):
    """The speech generation bundle of the VQ model and the trained prior, saved as a Hub folder with its pipeline."""
    vq_model = AudioVQVAEModel.from_pretrained(audio_model_dir).eval()
    bundle = VQGenerationModel.from_parts(vq_model, [PixelSNAILModel.from_pretrained(audio_prior)])
    folder = tmp_path_factory.mktemp("speech_bundle")
    bundle.save_pretrained(folder)
    add_pipelines(folder, repo_tasks(bundle.config))
    return bundle, folder


@needs_fillets
def test_speech_bundle_round_trips_and_generates_the_same_waveform_everywhere(audio_bundle, tmp_path, hf_home):
    bundle, folder = audio_bundle
    config = bundle.config
    assert config.is_audio and config.sampling_rate == 16000 and config.num_samples == SEGMENT
    assert config.id2label == dict(enumerate(SPEAKER_NAMES))  # the prior's classes are the speakers
    assert repo_tasks(config) == ["unconditional-audio-generation"]
    loaded = AutoModel.from_pretrained(folder).eval()
    assert type(loaded) is VQGenerationModel
    assert_state_dicts_bitwise_equal(bundle.state_dict(), loaded.state_dict())

    speaker = 1
    waveform, codes = loaded.generate(
        1, class_labels=speaker, generator=torch.Generator().manual_seed(0), return_codes=True
    )
    assert waveform.shape == (1, SEGMENT) and codes[0].shape == (1, SEGMENT // 64)
    assert waveform.abs().max() <= 1 and waveform.std() > 0
    # The same seed gives the same codes and the same WaveNet samples: the prior's codes, decoded with its speaker.
    generator = torch.Generator().manual_seed(0)
    again = bundle.priors[0].generate(1, class_labels=torch.tensor([speaker]), generator=generator)
    assert torch.equal(again, codes[0])
    assert torch.equal(bundle.vq_model.decode(again, speaker_ids=speaker, generator=generator), waveform)

    speak = pipeline("unconditional-audio-generation", model=str(folder), trust_remote_code=True)
    clips = speak(num_samples=1, speaker=SPEAKER_NAMES[speaker], seed=0)
    assert clips[0]["sampling_rate"] == 16000 and np.array_equal(clips[0]["audio"], waveform[0].numpy())
    with pytest.raises(ValueError, match="unknown speaker 'Nobody'.*speakers are"):
        speak(num_samples=1, speaker="Nobody", seed=0)

    place_in_hub_cache(folder, "someone/speech-generation", hf_home)
    result = run_without_hf_vqvae(
        f"""
        import json, torch
        from transformers import AutoModel, pipeline
        model = AutoModel.from_pretrained("someone/speech-generation", trust_remote_code=True).eval()
        wave = model.generate(1, class_labels={speaker}, generator=torch.Generator().manual_seed(0))
        speak = pipeline("unconditional-audio-generation", model="someone/speech-generation", trust_remote_code=True)
        clip = speak(num_samples=1, speaker={SPEAKER_NAMES[speaker]!r}, seed=0)[0]
        print(json.dumps({{"module": type(model).__module__, "wave": wave[0].tolist(), "clip": clip["audio"].tolist(),
                          "rate": clip["sampling_rate"], "pipeline": type(speak).__name__}}))
        """
    )
    assert result["module"].startswith("transformers_modules.") and result["pipeline"] == "VQAudioGenerationPipeline"
    assert result["wave"] == waveform[0].tolist() and result["clip"] == waveform[0].tolist()
    assert result["rate"] == 16000


def run_sample(argv: list[str]) -> None:
    saved, sys.argv = sys.argv, ["sample.py", *argv]
    try:
        load_script("sample").main()
    finally:
        sys.argv = saved


@needs_fillets
def test_sample_writes_the_bundles_speech_as_wavs(audio_bundle, audio_prior, tmp_path, capsys):
    bundle, folder = audio_bundle
    speakers = [SPEAKER_NAMES[4], "2"]  # by name and by id, one per clip
    run_sample(["--bundle", str(folder), "--num_samples", "2", "--speaker", *speakers, "--seed", "3",
                "--output", str(tmp_path / "wavs")])  # fmt: skip
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["speakers"] == [SPEAKER_NAMES[4], SPEAKER_NAMES[2]] and record["sampling_rate"] == 16000
    expected = bundle.generate(2, class_labels=[4, 2], generator=torch.Generator().manual_seed(3))
    assert [Path(path).name for path in record["files"]] == [
        f"sample_000_{SPEAKER_NAMES[4].lower().replace(' ', '_')}.wav",
        f"sample_001_{SPEAKER_NAMES[2].lower().replace(' ', '_')}.wav",
    ]
    for path, clip in zip(record["files"], expected):
        info = soundfile.info(path)
        assert info.samplerate == 16000 and info.frames == SEGMENT and info.channels == 1
        assert info.subtype == "PCM_16"
        written, _ = soundfile.read(path, dtype="float32")
        assert np.abs(written - clip.numpy()).max() <= 1 / 32767  # the generated clip, to 16-bit precision

    # The prior alone: its codes_info.json names the audio VQ-VAE that decodes them; speakers in turn by default.
    run_sample(["--prior", str(audio_prior), "--num_samples", "2", "--seed", "3", "--output", str(tmp_path / "p")])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["speakers"] == list(SPEAKER_NAMES[:2]) and len(record["files"]) == 2
    expected = bundle.generate(2, class_labels=[0, 1], generator=torch.Generator().manual_seed(3))
    for path, clip in zip(record["files"], expected):
        written, rate = soundfile.read(path, dtype="float32")
        assert rate == 16000 and np.abs(written - clip.numpy()).max() <= 1 / 32767

    with pytest.raises(SystemExit):
        run_sample(["--bundle", str(folder), "--speaker", "Nobody", "--output", str(tmp_path / "none")])
    error = capsys.readouterr().err
    assert "--speaker 'Nobody' is not a speaker of this model" in error and SPEAKER_NAMES[0] in error
    assert not (tmp_path / "none").exists()


def test_speech_bundle_config_rejects_priors_that_do_not_fit():
    audio = AudioVQVAEConfig(**TINY_AUDIO)  # 3 speakers, 32 codes
    sequence = {"num_embeddings": 32, "spatial_dims": 1, "latent_length": 16, **TINY_PRIOR}
    config = VQGenerationConfig(vq_config=audio, prior_configs=[PixelSNAILConfig(**sequence, num_classes=3)])
    assert config.is_audio and config.num_samples == 16 * 64 and config.level_shapes == [(32, 16)]
    # Built from its own dict, as from_pretrained does.
    assert VQGenerationConfig(**config.to_dict()).to_dict() == config.to_dict()
    # With no prior given: an unconditional one over the codes of the model's training crop.
    assert VQGenerationConfig(vq_config=audio).prior_configs[0].latent_shape == (1024 // 64,)
    with pytest.raises(ValueError, match="num_classes must be the audio model's num_speakers \\(3\\)"):
        VQGenerationConfig(vq_config=audio, prior_configs=[PixelSNAILConfig(**sequence, num_classes=6)])
    with pytest.raises(ValueError, match="prior_configs\\[0\\] models 4x4 maps of 32 codes"):
        image_prior = PixelSNAILConfig(num_embeddings=32, latent_height=4, latent_width=4, **TINY_PRIOR)
        VQGenerationConfig(vq_config=audio, prior_configs=[image_prior])
    with pytest.raises(ValueError, match="16 maps of 64 codes"):
        VQGenerationConfig(vq_config=audio, prior_configs=[PixelSNAILConfig(**{**sequence, "num_embeddings": 64})])


def test_code_collator_reads_sequences_and_checks_their_dims_against_the_shape():
    """`CodeCollator` batches 1-D code rows `(T,)` as `(B, T)` under its usual skip rules: a 2-D row, another length
    or a code outside the codebook is skipped and counted; without a shape the first good row sets it."""
    rows = [
        {"codes": [1, 2, 3, 4], "speaker_id": 0},
        {"codes": [[1, 2, 3, 4]], "speaker_id": 1},  # a map, not a sequence
        {"codes": [1, 2, 3], "speaker_id": 1},  # another length
        {"codes": [5, 6, 7, 40], "speaker_id": 2},  # 40 is outside the 32 codes
        {"codes": [7, 6, 5, 4], "speaker_id": None},  # no speaker
        {"codes": [0, 31, 0, 31], "speaker_id": 2},
    ]
    batch = CodeCollator("codes", label_column="speaker_id", code_shape=(4,), num_embeddings=32)(rows)
    assert torch.equal(batch["codes"], torch.tensor([[1, 2, 3, 4], [0, 31, 0, 31]]))
    assert torch.equal(batch["labels"], torch.tensor([0, 2])) and batch["positions"] == [0, 5]
    assert batch["skipped"] == {"malformed": 2, "out_of_range": 1, "no_label": 1}
    assert any("expected (4,)" in line and "(1, 4)" in line for line in batch["bad_examples"])
    # Without a shape, the first good row's: here a sequence, so the later map is the odd one out.
    batch = CodeCollator("codes")([rows[0], rows[1], rows[5]])
    assert batch["codes"].shape == (2, 4) and batch["skipped"] == {"malformed": 1}
    assert CodeCollator("codes", code_shape=(4,))([rows[1]])["codes"].shape == (0, 4)


@needs_fillets
def test_push_to_hub_builds_a_speech_bundle_folder_that_speaks_without_hf_vqvae(
    audio_model_dir, audio_prior, tmp_path, hf_home, capsys
):
    """scripts/push_to_hub.py --vq_model <audio model> --priors <prior run> builds the Hub folder of a speech bundle:
    the bundle, its feature extractor and pipeline, a WAV sample per speaker, a card naming the speakers and their
    licences with the prior's measured bits per code, and its own web demo (the speech app, never the image one),
    with the Space built beside it."""
    repo_id = "someone/speech-bundle"
    folder = tmp_path / "hub"
    load_script("push_to_hub").main(
        ["--vq_model", str(audio_model_dir), "--priors", str(audio_prior), "--hub_model_id", repo_id,
         "--repo_dir", str(folder), "--num_samples", "2", "--seed", "1", "--dry_run", "--space"]
    )  # fmt: skip
    files = {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}
    wavs = [f"examples/sample_00{i}_{SPEAKER_NAMES[i].lower().replace(' ', '_')}.wav" for i in range(2)]
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "pipeline_audio_generation.py",
            "README.md", *wavs} <= files  # fmt: skip
    bundle = VQGenerationModel.from_pretrained(folder).eval()
    assert repo_kind(bundle.config) == "vq_generation_audio" and repo_tasks(bundle.config) == [
        "unconditional-audio-generation"
    ]
    # The Space table decides by the same kind: the speech app, in the folder and in the Space built beside it.
    assert demo_app(folder) is DEMO_APPS[repo_kind(bundle.config)] and demo_app(folder).template == "speech_app.py"
    assert (folder / "app.py").read_bytes() == demo_app(folder).template_path().read_bytes()
    assert (tmp_path / "hub-space" / "app.py").read_bytes() == (folder / "app.py").read_bytes()

    for path in wavs:
        info = soundfile.info(folder / path)
        assert (info.samplerate, info.frames, info.channels, info.subtype) == (16000, SEGMENT, 1, "PCM_16")

    card = ModelCard.load(folder / "README.md")
    assert card.data.pipeline_tag == "unconditional-audio-generation" and card.data.license == "other"
    assert [example["output"]["url"] for example in card.data.widget] == wavs
    assert not re.search(r"\{[a-z_]+\}|\{\{|\}\}", card.text), "unrendered template"
    assert f'pipeline("unconditional-audio-generation", model="{repo_id}", trust_remote_code=True)' in card.text
    assert "## Try it in a web demo" in card.text and "python app.py" in card.text
    for speaker in SPEAKERS:
        assert f"| {speaker.name} | {speaker.description} | {speaker.licence} |" in card.text
    bits = json.loads((audio_prior / "metrics.json").read_text())["eval/bits_per_code"]
    assert f"| prior: bits per code, held out | {bits:.3f} (uniform: log2 K = 5) |" in card.text

    place_in_hub_cache(folder, repo_id, hf_home)
    result = run_without_hf_vqvae(
        f"""
        import json
        from transformers import AutoFeatureExtractor, pipeline
        speak = pipeline("unconditional-audio-generation", model="{repo_id}", trust_remote_code=True)
        clips = speak(num_samples=2, seed=1)
        extractor = AutoFeatureExtractor.from_pretrained("{repo_id}", trust_remote_code=True)
        print(json.dumps({{"clips": [clip["audio"].tolist() for clip in clips], "rate": clips[0]["sampling_rate"],
                          "extractor": type(extractor).__name__, "rate_in": extractor.sampling_rate}}))
        """,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert result["rate"] == result["rate_in"] == 16000 and result["extractor"] == "VQVAEAudioFeatureExtractor"
    # The repo's WAVs are what its pipeline speaks for the seed they were drawn with (the speakers in turn).
    for path, clip in zip(wavs, result["clips"]):
        written, _ = soundfile.read(folder / path, dtype="float32")
        assert np.abs(written - np.asarray(clip, dtype=np.float32)).max() <= 1 / 32767
    assert np.std(result["clips"][0]) > 0


@needs_fillets
def test_the_package_exports_and_registers_the_speech_generation_pipeline(audio_bundle):
    """`hf_vqvae.VQAudioGenerationPipeline` is registered for its task: a bundle object in this process speaks
    through `pipeline("unconditional-audio-generation", model=bundle)`, the bundle's own waveform for the seed."""
    import hf_vqvae

    bundle, _ = audio_bundle
    speak = pipeline("unconditional-audio-generation", model=bundle)
    assert type(speak) is hf_vqvae.VQAudioGenerationPipeline and "VQAudioGenerationPipeline" in hf_vqvae.__all__
    clip = speak(num_samples=1, speaker=SPEAKER_NAMES[2], seed=5)[0]
    expected = bundle.generate(1, class_labels=2, generator=torch.Generator().manual_seed(5))
    assert clip["sampling_rate"] == 16000 and np.array_equal(clip["audio"], expected[0].numpy())
