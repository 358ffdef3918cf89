"""The speech main job's held-out evaluation at several WaveNet sampling temperatures, side by side on one trained
model (issue 14): STOI and multi-resolution STFT distance of reconstructions, and voice conversion as the speaker
classifier hears it, raw and standardised on the decoded clips (`hf_vqvae.evaluation.speech.evaluate_speech`, the
job's own evaluation; the same sources, classifier and seed at every temperature).

    python benchmarks/bench_speech.py --run_dir outputs/demo-audio --temperatures 1.0 0.7 0.5

Reads `<run_dir>/model` and `<run_dir>/data`; writes benchmarks/results/speech.json and speech.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from datasets import Audio, load_dataset
from transformers import AutoModel

from hf_vqvae.evaluation.speech import evaluate_speech

RESULTS = Path(__file__).parent / "results"
COLUMNS = [
    ("STOI recon.", "stoi_reconstruction"),
    ("STOI conv. vs source", "stoi_conversion_vs_source"),
    ("MR-STFT recon.", "mrstft_reconstruction"),
    ("recon. named", "speaker_accuracy_reconstruction"),
    ("target named", "conversion_target_accuracy"),
    ("shift", "conversion_target_shift"),
    ("recon. named, std.", "standardized_reconstruction_accuracy"),
    ("target named, std.", "standardized_conversion_target_accuracy"),
    ("shift, std.", "standardized_conversion_target_shift"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", type=Path, default=Path("outputs/demo-audio"))
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.7, 0.5])
    parser.add_argument("--sources_per_speaker", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output_name", default=str(RESULTS / "speech"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = AutoModel.from_pretrained(args.run_dir / "model").eval()
    test = list(load_dataset(str(args.run_dir / "data"), split="test").cast_column("audio", Audio(decode=False)))
    rows = []
    for temperature in args.temperatures:
        start = time.perf_counter()
        results = evaluate_speech(model, test, args.sources_per_speaker, temperature=temperature).results
        rows.append({**results, "seconds": round(time.perf_counter() - start, 1)})
        print(f"temperature {temperature}: {json.dumps({k: round(results[k], 3) for _, k in COLUMNS})}", flush=True)
    Path(args.output_name + ".json").write_text(json.dumps({"run_dir": str(args.run_dir), "rows": rows}, indent=2))
    first = rows[0]
    lines = [
        "# Speech: held-out evaluation by WaveNet sampling temperature",
        "",
        f"Model `{args.run_dir / 'model'}`; {first['num_sources']} held-out sources, {first['num_conversions']} "
        f"conversions, chance {first['chance']:.3f}; STOI of noise {first['stoi_noise']:.3f}, multi-resolution "
        f'STFT distance of noise {first["mrstft_noise"]:.2f}. "std.": the classifier\'s features standardised on '
        f"the decoded clips. Command: `python benchmarks/bench_speech.py --run_dir {args.run_dir} --temperatures "
        + " ".join(f"{t:g}" for t in args.temperatures)
        + "`.",
        "",
        "| temperature | " + " | ".join(name for name, _ in COLUMNS) + " |",
        "|---:|" + "---:|" * len(COLUMNS),
        *[
            f"| {row['decode_temperature']:g} | " + " | ".join(f"{row[key]:.3f}" for _, key in COLUMNS) + " |"
            for row in rows
        ],
    ]
    Path(args.output_name + ".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
