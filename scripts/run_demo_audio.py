"""The audio main job: real multi-speaker speech -> the VQ-VAE paper's speech model -> metrics, voice conversion, a
speaker-conditional prior over the codes, WAV files and a Hub-ready folder. `make demo-audio` runs it.

1. data: `prepare_data.py --source speech` (6 real voices, 3.4 hours; decoded once into a cache);
2. train: `scripts/train.py --model audio_vqvae` (a small WaveNet, a few thousand steps' worth of minutes);
3. evaluate, on two held-out utterances per speaker, each decoded as every speaker in one batch: reconstructions
   (STOI, multi-resolution STFT distance, each against a noise baseline), voice conversion to each other speaker (a
   speaker classifier trained on other held-out real clips must name the target, read as it is and with its
   features standardised on the decoded clips (the decoder's own channel removed), and how far swapping the speaker
   id moves it toward the target; STOI against the source), the held-out NLL against the mu-law unigram baseline,
   the code bit rate. Every clip is sampled at `--temperature` 0.5;
4. prior: `extract_codes.py` (the middle 1 s of every utterance -> 256 codes, with its speaker), `train.py --model
   pixelsnail --class_conditional` (a speaker-conditional 1-D PixelSNAIL), `evaluate.py` (held-out bits per code);
   then samples, decoded to speech;
5. a Hub-ready folder: model, feature extractor, pipelines, prior (`prior/`), WAV examples, a spectrogram grid, a
   card with the metrics and the speakers' licences, and a Gradio demo (`cd <output_dir>/hub && python app.py`;
   `scripts/push_to_hub.py <output_dir>/hub --hub_model_id org/name --space` pushes it as a Space).

On 2 cores this takes about 20 minutes (`--threads 1` where other jobs share the machine), and the quality is
that of 20 minutes of CPU training: expect noisy, babbling WaveNet samples that follow the loudness and only
roughly the content of the source; the metrics below say how far it got.
For real results train far longer on a GPU (the paper trains for hundreds of thousands of steps), e.g.

    python scripts/train.py --model audio_vqvae --dataset outputs/data/speech --output_dir outputs/audio-vqvae \\
        --per_device_train_batch_size 16 --max_train_steps 200000 --learning_rate 2e-4

    python scripts/run_demo_audio.py [--quick] [--output_dir outputs/demo-audio]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from datasets import Audio, load_dataset
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel, VQVAEAudioFeatureExtractor
from hf_vqvae.audio_images import save_spectrogram_grid
from hf_vqvae.data.audio import write_wav
from hf_vqvae.data.speech import SPEAKERS, prepare_speech
from hf_vqvae.evaluation.speech import evaluate_speech
from hf_vqvae.hub.audio_card import write_audio_card
from hf_vqvae.hub.pipelines import REPO_TASKS, add_pipelines
from hf_vqvae.space import write_app

REPO = Path(__file__).resolve().parents[1]
# A small WaveNet (10 layers, dilations 1..512, receptive field 64 ms) that learns something in minutes on a CPU;
# the encoder's six stride-2 convolutions, the codebook (K = 512, D = 64) and the 64x compression are the paper's.
DEMO_MODEL = {
    "hidden_channels": 64, "residual_channels": 32, "num_embeddings": 512, "embedding_dim": 64,
    "condition_channels": 64, "speaker_embedding_dim": 32, "wavenet_residual_channels": 32,
    "wavenet_gate_channels": 32, "wavenet_skip_channels": 64, "wavenet_num_layers": 10, "wavenet_dilation_cycle": 10,
    "segment_samples": 2048,
}  # fmt: skip
# The prior: a speaker-conditional 1-D PixelSNAIL (two stages of two residual blocks and causal attention) over
# the 256 codes of a 1 s crop.
PRIOR_MODEL = {"hidden_channels": 64, "num_stages": 2, "num_residual_blocks": 2, "num_attention_heads": 4,
               "dropout": 0.1}  # fmt: skip


def log(message: str, start: float) -> None:
    print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)


def script(name: str, *arguments, threads: int | None) -> None:
    """Runs scripts/<name>.py, the commands a user would type."""
    # Small GEMMs: with other jobs on the machine, one thread per process is much faster than two fighting.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    subprocess.run([sys.executable, str(REPO / "scripts" / f"{name}.py"), *map(str, arguments)], check=True, env=env)


def train(args, data: Path, model_dir: Path) -> dict:
    script(
        "train", "--model", "audio_vqvae", "--dataset", data, "--output_dir", model_dir, "--model_config",
        json.dumps(DEMO_MODEL), "--per_device_train_batch_size", 8, "--per_device_eval_batch_size", 8,
        "--learning_rate", "3e-3", "--lr_warmup_steps", 50, "--max_train_steps", args.max_train_steps, "--eval_steps",
        args.max_train_steps, "--eval_samples", args.eval_samples, "--checkpointing_steps", args.max_train_steps,
        "--logging_steps", 50, "--num_workers", 1, "--report_to", "none", "--seed", 0, threads=args.threads,
    )  # fmt: skip
    return json.loads((model_dir / "metrics.json").read_text())


def train_prior(args, data: Path, model_dir: Path, out: Path, segment_samples: int, steps: int) -> Path:
    """The prior stage as a user runs it: `extract_codes.py` encodes the middle `segment_samples` of every utterance
    (one fixed-length code sequence each, with its speaker), `train.py` fits a speaker-conditional 1-D PixelSNAIL to
    the training split's sequences, and `evaluate.py` measures it on the held-out utterances' codes."""
    codes, prior_dir = out / "codes", out / "prior"
    script("extract_codes", "--model_name_or_path", model_dir, "--dataset", data, "--output_dir", codes,
           "--segment_samples", segment_samples, "--num_workers", 1, threads=args.threads)  # fmt: skip
    script(
        "train", "--model", "pixelsnail", "--dataset", codes, "--output_dir", prior_dir, "--class_conditional",
        "--model_config", json.dumps(PRIOR_MODEL), "--per_device_train_batch_size", 16, "--learning_rate", "3e-3",
        "--lr_warmup_steps", 50, "--max_train_steps", steps, "--eval_steps", steps, "--checkpointing_steps", steps,
        "--logging_steps", 100, "--num_workers", 1, "--report_to", "none", "--seed", 0, threads=args.threads,
    )  # fmt: skip
    script("evaluate", "--model_name_or_path", prior_dir, "--dataset", codes, "--split", "test", "--no_nll_bound",
           "--no_progress", "--output", prior_dir / "eval_results.json", threads=args.threads)  # fmt: skip
    return prior_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, default=REPO / "outputs" / "demo-audio")
    parser.add_argument("--quick", action="store_true", help="a smoke run: little data, a few steps, short clips")
    parser.add_argument("--max_train_steps", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for evaluation and sampling")
    parser.add_argument(
        "--sources_per_speaker", type=int, default=None,
        help="held-out clips per speaker decoded as every speaker (default 2; 1 with --quick)",
    )  # fmt: skip
    # 0.5: an undertrained WaveNet's full-temperature samples carry hiss that covers the voice; at 0.5 its clips are
    # more intelligible and nearer the target voice (benchmarks/bench_speech.py; BENCHMARKS.md, "Speech main job").
    parser.add_argument("--temperature", type=float, default=0.5, help="WaveNet sampling temperature of every clip")
    args = parser.parse_args()
    start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.max_train_steps = args.max_train_steps or (20 if args.quick else 1500)
    args.eval_samples = 12 if args.quick else 96
    args.sources_per_speaker = args.sources_per_speaker or (1 if args.quick else 2)
    clip_seconds, prior_steps = (0.25, 50) if args.quick else (1.5, 600)
    out = args.output_dir
    timings = {}

    data = out / "data"
    info = prepare_speech(
        data, max_utterances_per_speaker=12 if args.quick else None, test_fraction=0.25 if args.quick else 0.05,
        num_shards=4,
    )  # fmt: skip
    timings["data_s"] = time.perf_counter() - start
    log(f"data: {info['splits']} utterances, {info['train_hours'] + info['test_hours']:.2f} hours", start)

    metrics = train(args, data, out / "model")
    timings["train_s"] = time.perf_counter() - start - sum(timings.values())
    log(f"trained {args.max_train_steps} steps: held-out NLL {metrics['eval/nll']:.3f} nats/sample "
        f"(mu-law unigram baseline {metrics['eval/unigram_nll']:.3f})", start)  # fmt: skip

    model = AutoModel.from_pretrained(out / "model").eval()
    rate, factor = model.config.sampling_rate, model.config.downsample_factor
    test = list(load_dataset(str(data), split="test").cast_column("audio", Audio(decode=False)))
    num_speakers = model.config.num_speakers
    log(f"decoding {args.sources_per_speaker} held-out clips of {clip_seconds} s per speaker as each of the "
        f"{num_speakers} speakers (reconstructions and conversions, one batch)", start)  # fmt: skip
    evaluation = evaluate_speech(
        model, test, args.sources_per_speaker, clip_seconds, temperature=args.temperature, progress=True
    )
    sources, originals, decoded = evaluation.sources, evaluation.originals, evaluation.decoded
    reconstructions = evaluation.reconstructions
    speaker_ids = sorted({row["speaker_id"] for row in sources})
    timings["evaluate_s"] = time.perf_counter() - start - sum(timings.values())
    results = {
        "heldout_nll_nats": metrics["eval/nll"],
        "heldout_bits_per_sample": metrics["eval/bits_per_sample"],
        "unigram_nll_nats": metrics["eval/unigram_nll"],
        **evaluation.results,
    }

    prior_dir = train_prior(args, data, out / "model", out, 4096 if args.quick else 16384, prior_steps)
    prior = PixelSNAILModel.from_pretrained(prior_dir).eval()
    log(f"prior: {prior_steps} steps of scripts/train.py on the codes of scripts/extract_codes.py", start)
    train_codes = torch.tensor(load_dataset(str(out / "codes"), split="train")["codes"])
    histogram = torch.bincount(train_codes.flatten(), minlength=model.config.num_embeddings).double()
    probabilities = histogram[histogram > 0] / histogram.sum()
    prior_metrics = json.loads((prior_dir / "eval_results.json").read_text())["metrics"]
    results["prior_bits_per_code_heldout"] = prior_metrics["bits_per_code"]
    results["code_unigram_bits_per_code"] = float(-(probabilities * probabilities.log2()).sum())
    sample_speakers = torch.tensor(speaker_ids[:: max(1, len(speaker_ids) // 3)][:3])
    generator = torch.Generator().manual_seed(1)
    sampled = prior.generate(len(sample_speakers), class_labels=sample_speakers, generator=generator)
    samples = model.decode(sampled, sample_speakers, generator=generator, temperature=args.temperature, progress=True)
    timings["prior_s"] = time.perf_counter() - start - sum(timings.values())

    hub = out / "hub"
    model.save_pretrained(hub)
    VQVAEAudioFeatureExtractor(sampling_rate=rate, pad_to_multiple_of=factor).save_pretrained(hub)
    add_pipelines(hub, REPO_TASKS["audio_vqvae"])
    prior.save_pretrained(hub / "prior")
    examples, shown = [], []
    for i, speaker in enumerate(speaker_ids):
        # The speaker's first source (its longest held-out utterance), in the voice of the next speaker.
        n = [row["speaker_id"] for row in sources].index(speaker)
        target = speaker_ids[(i + 1) % len(speaker_ids)]
        name = SPEAKERS[speaker].name.lower().replace(" ", "_")
        examples.append((f"examples/{write_wav(hub / 'examples' / f'{name}_original.wav', originals[n], rate).name}",
                         f"{SPEAKERS[speaker].name}: held-out original"))  # fmt: skip
        write_wav(hub / "examples" / f"{name}_reconstruction.wav", reconstructions[n], rate)
        target_name = SPEAKERS[target].name.lower().replace(" ", "_")
        write_wav(hub / "examples" / f"{name}_as_{target_name}.wav", decoded[target, n], rate)
        shown.append((originals[n], reconstructions[n], decoded[target, n]))
    for i, speaker in enumerate(sample_speakers.tolist()):
        write_wav(hub / "examples" / f"prior_sample_{SPEAKERS[speaker].name.lower().replace(' ', '_')}.wav",
                  samples[i], rate)  # fmt: skip
    save_spectrogram_grid([list(row) for row in zip(*shown)], hub / "spectrograms.png", rate)
    write_app(hub)  # the Gradio demo (`python app.py`): upload or record speech, pick a speaker, hear it decoded
    rows = [
        ("held-out NLL (nats / mu-law sample)", f"{results['heldout_nll_nats']:.3f} (unigram baseline "
         f"{results['unigram_nll_nats']:.3f})"),
        ("STOI, reconstruction", f"{results['stoi_reconstruction']:.3f} (noise {results['stoi_noise']:.3f})"),
        ("multi-resolution STFT distance, reconstruction", f"{results['mrstft_reconstruction']:.3f} (noise "
         f"{results['mrstft_noise']:.3f})"),
        ("speaker classifier on real / reconstructed clips", f"{results['speaker_accuracy_real']:.2f} / "
         f"{results['speaker_accuracy_reconstruction']:.2f} (chance {results['chance']:.2f})"),
        (f"conversion ({results['num_conversions']} clips): classifier names the target",
         f"{results['conversion_target_accuracy']:.2f} (p(target) {results['conversion_target_probability']:.2f}; "
         f"chance {results['chance']:.2f})"),
        ("conversion: p(target) minus p(target) on the same clip's reconstruction",
         f"{results['conversion_target_shift']:+.3f} +- {results['conversion_target_shift_se']:.3f}"),
        ("the same, features standardised on the decoded clips: reconstructions / conversions name the speaker",
         f"{results['standardized_reconstruction_accuracy']:.2f} / "
         f"{results['standardized_conversion_target_accuracy']:.2f} (shift "
         f"{results['standardized_conversion_target_shift']:+.3f} +- "
         f"{results['standardized_conversion_target_shift_se']:.3f})"),
        ("STOI, conversion against its source", f"{results['stoi_conversion_vs_source']:.3f}"),
        ("WaveNet sampling temperature of every clip above", f"{args.temperature:g}"),
        ("code rate", f"{results['code_bits_per_second']:.0f} bit/s fixed-length; "
         f"{results['code_unigram_bits_per_code']:.2f} bits/code by its histogram"),
        ("prior (speaker-conditional 1-D PixelSNAIL)", f"{results['prior_bits_per_code_heldout']:.2f} bits/code held "
         f"out (log2 K = {math.log2(model.config.num_embeddings):.0f})"),
    ]  # fmt: skip
    write_audio_card(
        hub, repo_id="hf-vqvae/audio-vqvae-demo", metrics=rows, examples=examples, spectrograms="spectrograms.png",
        speakers=[{"id": i, **{k: getattr(s, k) for k in ("name", "description", "licence")}} for i, s in
                  enumerate(SPEAKERS)],
        training=f"{args.max_train_steps} steps of 8 crops of {DEMO_MODEL['segment_samples']} samples "
        f"({timings['train_s'] / 60:.1f} minutes on this machine's CPU): far too little for clean speech; the "
        "speaker classifier's figures above say how much of each voice comes through. Model config: `"
        + json.dumps(DEMO_MODEL) + "`.",
        reproduce="make demo-audio  # scripts/run_demo_audio.py",
    )  # fmt: skip
    timings["total_s"] = time.perf_counter() - start
    summary = {"results": results, "timings": timings, "train_metrics": metrics, "quick": args.quick}
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for name, value in rows:
        print(f"{name}: {value}")
    log(f"done: Hub-ready folder {hub}", start)


if __name__ == "__main__":
    main()
