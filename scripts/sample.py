"""Samples images from trained priors: codes by ancestral sampling (top prior, then each lower prior conditioned
on the codes above), decoded by the VQ-VAE(-2) they were trained on, written as a PNG grid.

    python scripts/sample.py --prior outputs/prior --num_samples 64 --output outputs/samples.png
    python scripts/sample.py --prior outputs/top_prior outputs/bottom_prior --class_labels 3 --top_k 50
    python scripts/sample.py --prior outputs/guided_prior --class_labels 7 --guidance_scale 3  # classifier-free
    python scripts/sample.py --bundle outputs/generation_repo --num_samples 16  # a generation bundle

`--prior` and `--vq_model` take local folders or Hub ids; `--vq_model` defaults to the model the first prior's
codes came from (its `codes_info.json`). `--bundle` takes a generation bundle (`VQGenerationModel`) instead.

Speech (an audio VQ-VAE and its 1-D prior, as a bundle or as `--prior`): WAV files at the model's rate (16 kHz),
`sample_000_<speaker>.wav`, ... in the folder `--output` (default `samples/`), each clip decoded by the WaveNet with
its speaker; `--speaker` picks them (names or ids; one for every clip, or one per clip; default: every speaker in
turn).

    python scripts/sample.py --bundle outputs/speech_repo --speaker "Allison Smith" --num_samples 4 --output wavs
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch
from transformers import AutoModel

from hf_vqvae import PixelSNAILModel, VQGenerationModel
from hf_vqvae.codes_info import CodesInfo
from hf_vqvae.data.audio import write_wav
from hf_vqvae.images import save_sample_grid
from hf_vqvae.loading import load_processor
from hf_vqvae.sampling import class_labels_for, generate_images, is_audio_model, speaker_ids_for


def speaker_ids(names: list[str] | None, speakers: list[str], parser: argparse.ArgumentParser) -> list[int] | None:
    """`--speaker` values (names, or ids) as ids of `speakers`; a clear error for one the model does not know."""
    if not names:
        return None
    ids = []
    for name in names:
        if name in speakers:
            ids.append(speakers.index(name))
        elif name.isdigit() and int(name) < len(speakers):
            ids.append(int(name))
        else:
            parser.error(f"--speaker {name!r} is not a speaker of this model; its speakers: {speakers}")
    return ids


def write_wavs(waveforms: torch.Tensor, speakers: list[str | None], rate: int, folder: Path) -> list[str]:
    """One 16-bit WAV per clip, named after its index and speaker."""
    paths = []
    for index, (clip, speaker) in enumerate(zip(waveforms, speakers)):
        suffix = "" if speaker is None else "_" + re.sub(r"[^a-z0-9]+", "_", speaker.lower()).strip("_")
        paths.append(str(write_wav(folder / f"sample_{index:03d}{suffix}.wav", clip, rate)))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", nargs="+", default=None, help="prior(s), top level first")
    parser.add_argument("--vq_model", default=None, help="the VQ-VAE(-2) (or audio VQ-VAE) that decodes the codes")
    parser.add_argument("--bundle", default=None, help="a generation bundle (VQ model and priors), instead of --prior")
    parser.add_argument(
        "--speaker", nargs="*", default=None, help="speech: speaker names or ids, one for every clip or one per clip"
    )
    parser.add_argument("--num_samples", type=int, default=16)
    parser.add_argument("--class_labels", type=int, nargs="*", default=None, help="one label, or one per sample")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=None)
    parser.add_argument(
        "--guidance_scale",
        type=float,
        default=None,
        help="classifier-free guidance of class-conditional priors trained with --class_dropout (1: none, 0: "
        "unconditional, above 1: more typical of the class)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_cache", action="store_true", help="re-run the whole network at every step (slow)")
    parser.add_argument("--columns", type=int, default=8)
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="the PNG grid (default samples.png); speech: the WAV folder (samples)",
    )
    args = parser.parse_args()
    if (args.bundle is None) == (args.prior is None):
        parser.error("pass --prior (with --vq_model or its codes_info.json) or --bundle, one of them")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.bundle:
        bundle = VQGenerationModel.from_pretrained(args.bundle).to(device).eval()
        priors, vq_model, vq_source = list(bundle.priors), bundle.vq_model, args.bundle
    else:
        priors = [PixelSNAILModel.from_pretrained(path).to(device).eval() for path in args.prior]
        vq_source = args.vq_model or CodesInfo.read(args.prior[0], repo_type="model").vq_model
        vq_model = AutoModel.from_pretrained(vq_source).to(device).eval()
    audio = is_audio_model(vq_model)
    speakers = list(getattr(vq_model.config, "speaker_names", None) or []) if audio else []
    if args.speaker is not None and not audio:
        parser.error("--speaker is for speech models; images take --class_labels")
    if audio and not speakers:
        speakers = [str(index) for index in range(vq_model.config.num_speakers)]
    requested = speaker_ids(args.speaker, speakers, parser) if audio else args.class_labels
    try:  # the given labels checked, or every class in turn
        labels = class_labels_for(priors, args.num_samples, requested or None, device)
    except ValueError as error:
        parser.error(f"--{'speaker' if audio else 'class_labels'}: {error}")

    try:
        pixels = generate_images(
            priors,
            vq_model,
            args.num_samples,
            class_labels=labels,
            temperature=args.temperature,
            top_k=args.top_k,
            seed=args.seed,
            use_cache=not args.no_cache,
            guidance_scale=args.guidance_scale,
            progress=True,
        )
    except ValueError as error:  # sampling options these priors cannot take (e.g. guidance without a null class)
        parser.error(str(error))
    record = {"priors": args.prior or args.bundle, "vq_model": vq_source, "seed": args.seed}
    if audio:
        output = args.output or Path("samples")
        decoded = speaker_ids_for(vq_model, args.num_samples, labels)  # the speakers generate_images decoded with
        names = [None] * len(pixels) if decoded is None else [speakers[int(i)] for i in decoded]
        record["files"] = write_wavs(pixels, names, vq_model.config.sampling_rate, output)
        record["sampling_rate"] = vq_model.config.sampling_rate
        record["speakers"] = names
    else:
        output = args.output or Path("samples.png")
        processor = load_processor(vq_source, vq_model.config)
        save_sample_grid(processor.postprocess(pixels), output, columns=args.columns)
    record["output"] = str(output)
    record["class_labels"] = labels.tolist() if labels is not None else None
    record["guidance_scale"] = args.guidance_scale
    print(json.dumps(record))


if __name__ == "__main__":
    main()
