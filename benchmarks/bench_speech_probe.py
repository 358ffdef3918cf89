"""How much of the transcript the speech codes carry: a linear CTC probe on a trained audio VQ-VAE's codes (issue 14).

The speech data has per-utterance transcripts and no alignments, so the probe (`hf_vqvae.audio_probe`) learns the
alignment with CTC: one linear map from a window of 9 code vectors (36 ms) to characters, trained on the codes of
every training utterance with a transcript and scored by character error rate on the held-out ones. The control is
the same probe trained on the same codes with the transcripts shuffled across utterances; a probe that outputs
nothing scores 1.0.

    python benchmarks/bench_speech_probe.py --run_dir outputs/demo-audio   # after `make demo-audio`

Reads `<run_dir>/model` and `<run_dir>/data`; writes benchmarks/results/speech_probe.json and speech_probe.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from datasets import Audio, load_dataset
from tqdm.auto import tqdm
from transformers import AutoModel

from hf_vqvae.audio_probe import (
    character_error_rate,
    character_vocabulary,
    encode_transcript,
    probe_transcripts,
    train_ctc_probe,
)
from hf_vqvae.evaluation.speech import read_waveform

RESULTS = Path(__file__).parent / "results"


@torch.no_grad()
def code_vectors(model, rows, split: str) -> list[torch.Tensor]:
    """`(D, T / f)` quantised code vectors of each utterance in `rows`."""
    sequences = []
    for row in tqdm(rows, desc=f"encode {split}", unit="utterance"):
        audio = read_waveform(row)
        factor = model.config.downsample_factor
        audio = torch.nn.functional.pad(audio, (0, -len(audio) % factor))
        sequences.append(model.quantizer.embed(model.encode(audio[None]))[0])
    return sequences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", type=Path, default=Path("outputs/demo-audio"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch_size", type=int, default=16)
    # CTC's cost grows with the frames of the longest utterance in a batch: a cap keeps each probe to minutes on 2
    # cores. The results give how many training utterances it kept.
    parser.add_argument("--max_seconds", type=float, default=6.0, help="leave out longer training utterances")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output_name", default=str(RESULTS / "speech_probe"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = AutoModel.from_pretrained(args.run_dir / "model").eval()
    rows = {}
    for split in ("train", "test"):
        data = load_dataset(str(args.run_dir / "data"), split=split).cast_column("audio", Audio(decode=False))
        limit = args.max_seconds if split == "train" else float("inf")
        rows[split] = [row for row in data if row["transcript"].strip() and row["duration"] <= limit]
    vocabulary = character_vocabulary([row["transcript"] for row in rows["train"]])
    targets = {split: [encode_transcript(r["transcript"], vocabulary) for r in rows[split]] for split in rows}
    sequences = {split: code_vectors(model, rows[split], split) for split in rows}
    encoded = time.perf_counter() - start

    fit = {"steps": args.steps, "batch_size": args.batch_size, "progress": True}
    probe = train_ctc_probe(sequences["train"], targets["train"], len(vocabulary), **fit)
    order = torch.randperm(len(targets["train"]), generator=torch.Generator().manual_seed(1)).tolist()
    control = train_ctc_probe(sequences["train"], [targets["train"][i] for i in order], len(vocabulary), **fit)
    hypotheses = probe_transcripts(probe, sequences["test"])
    results = {
        "run_dir": str(args.run_dir),
        "utterances": {split: len(rows[split]) for split in rows},
        "vocabulary_size": len(vocabulary),
        "context_frames": 9,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "max_train_seconds": args.max_seconds,
        "cer_probe": character_error_rate(hypotheses, targets["test"]),
        "cer_control_shuffled_transcripts": character_error_rate(
            probe_transcripts(control, sequences["test"]), targets["test"]
        ),
        "cer_empty_output": 1.0,
        "seconds": {"encode": round(encoded, 1), "total": round(time.perf_counter() - start, 1)},
    }
    spell = lambda ids: "".join(vocabulary[i - 1] for i in ids)  # noqa: E731
    examples = [(spell(targets["test"][i]), spell(hypotheses[i])) for i in range(0, len(hypotheses), 40)][:5]
    results["examples"] = [{"reference": r, "probe": h} for r, h in examples]
    Path(args.output_name + ".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    lines = [
        "# Linear CTC probe on the speech codes",
        "",
        f"Model `{args.run_dir / 'model'}`; {results['utterances']['train']} training and "
        f"{results['utterances']['test']} held-out utterances with transcripts; {len(vocabulary)} characters; "
        f"{args.steps} steps of {args.batch_size} training utterances of at most {args.max_seconds:g} s. "
        f"Command: `python benchmarks/bench_speech_probe.py --run_dir {args.run_dir}`.",
        "",
        "| probe | held-out CER |",
        "|---|---:|",
        f"| linear CTC probe on the codes (9-frame window) | {results['cer_probe']:.3f} |",
        "| control: the same, trained with shuffled transcripts | "
        f"{results['cer_control_shuffled_transcripts']:.3f} |",
        "| empty output | 1.000 |",
        "",
        "| reference | probe |",
        "|---|---|",
        *[f"| {r} | {h} |" for r, h in examples],
        "",
        f"Time (s): {results['seconds']}",
    ]
    Path(args.output_name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
