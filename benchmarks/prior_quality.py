"""Sample quality of class-conditional priors on Fashion-MNIST (issue 16): classifier-free guidance, and the VQ-VAE
paper's gated PixelCNN against today's conv-only ("cone") prior. Run through `benchmarks/quality.py`:

    python benchmarks/quality.py priors                    # the issue's size: N = 5000 samples, 3000 prior steps
    python benchmarks/quality.py priors --fid_samples 1000 --prior_steps 1500    # smaller, on a busy CPU

Stages (each output is reused when present; delete --work_dir to start over):
  1. Fashion-MNIST (scripts/prepare_data.py), a VQ-VAE with the demo's settings (scripts/train.py, --vq_steps), its
     codes (scripts/extract_codes.py): 7x7 maps of the demo's K.
  2. Two class-conditional priors on those codes, trained with `--class_dropout` (the null class that guidance
     needs), the same optimizer settings and the same number of steps, and (nearly) the same number of parameters:
     `cone`, PixelSNAIL's causal convolutions without attention (they see a cone of the past), and `gated`, the gated
     PixelCNN (vertical and horizontal stacks, the whole past). Test bits per code: scripts/evaluate.py, with each
     test image's own label.
  3. Inception features (the FID network of hf_vqvae.metrics) of the whole test split, and of N samples of a prior
     per guidance scale: labels = those of the first N test images (the same class mix), one seed. FID against the
     whole test split; precision and recall (Kynkaanniemi et al. 2019, k-NN manifolds, k = 3) against the first N
     test images, so that both sets have N points, as the paper prescribes. Features are computed in chunks that
     are saved as they finish, so an interrupted run loses at most one chunk.

Writes benchmarks/results/<results_name>.json and .md (with the command of every figure) and a PNG grid of samples
per guidance scale.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inception_chunks import chunked_features, feature_seconds  # noqa: E402
from runs import REPO, RESULTS, SCRIPTS, demo_config, fmt, run, shown, train_arguments  # noqa: E402

# The two priors at (nearly) equal parameters: 5x5 kernels; three gated layers of 50 channels reach the whole past of
# a 7x7 map (3 * 2 rows up, 6 columns either side), while the input convolution and three gated residual blocks of 48
# channels see a cone of it. With K = 128 and 10 classes plus the null class: 322,028 vs 324,464 parameters.
PRIOR_CONFIGS: dict[str, dict[str, Any]] = {
    "cone": {"architecture": "pixelsnail", "hidden_channels": 48, "num_stages": 3, "num_residual_blocks": 1,
             "attention": False, "kernel_size": 5, "dropout": 0.1},
    "gated": {"architecture": "gated_pixelcnn", "hidden_channels": 50, "num_layers": 3, "kernel_size": 5,
              "dropout": 0.1},
    # Deeper and narrower at about the same size: six 3x5/1x3 layers of 46 channels (314,814 parameters) also reach
    # the whole past of a 7x7 map, with twice the gated non-linearities.
    "gated_deep": {"architecture": "gated_pixelcnn", "hidden_channels": 46, "num_layers": 6, "kernel_size": 3,
                   "dropout": 0.1},
}  # fmt: skip


def _load_module_state():
    from hf_vqvae import PixelSNAILModel, VQVAEModel

    return PixelSNAILModel, VQVAEModel


def save_images(images: torch.Tensor, path: Path) -> None:
    """Images in [-1, 1] as uint8, the 8-bit quantisation the FID features apply anyway."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8), path)


class PriorStudy:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.demo = demo_config()
        self.work = args.work_dir.resolve()
        self.python = sys.executable
        self.name = args.results_name
        self.results: dict[str, Any] = {
            "command": shlex.join(["python", "benchmarks/quality.py", "priors", *args.argv]),
            "settings": {key: value for key, value in vars(args).items() if key not in ("argv", "work_dir")},
            "priors": {},
            "guidance": {},
        }

    def save(self) -> None:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"{self.name}.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (RESULTS / f"{self.name}.md").write_text(render_markdown(self.results) + "\n")

    def _run(self, command: list[str], log: Path, done: Path, record_name: str) -> dict[str, Any]:
        """Runs `command` unless `done` exists; returns its command and wall time (kept beside `done`)."""
        record_path = log.with_suffix(".bench.json")
        if not done.exists() or not record_path.exists():
            if not done.exists():
                seconds = run(command, log, self.args.threads)
                record_path.write_text(json.dumps({"wall_seconds": seconds}))
            else:
                record_path.write_text(json.dumps({"wall_seconds": None}))
        return {f"{record_name}_command": shown(command),
                f"{record_name}_wall_seconds": json.loads(record_path.read_text())["wall_seconds"]}  # fmt: skip

    # ---------------------------------------------------------------------------------------------- stage 1
    def vq_and_codes(self) -> tuple[Path, Path, Path]:
        data = self.work / "data" / "fashion-mnist"
        prepare = [
            self.python,
            str(SCRIPTS / "prepare_data.py"),
            "--source",
            "fashion-mnist",
            "--output_dir",
            str(data),
        ]
        record = self._run(prepare, self.work / "logs" / "prepare.log", data / "dataset_info.json", "prepare")
        vq_dir = self.work / f"vqvae-steps{self.args.vq_steps}"
        settings = {k: v for k, v in self.demo["vqvae"].items() if k != "model_config"}
        train = [self.python, str(SCRIPTS / "train.py")] + train_arguments(
            settings, model="vqvae", dataset=str(data), output_dir=str(vq_dir),
            model_config=self.demo["vqvae"]["model_config"], max_train_steps=self.args.vq_steps,
            eval_steps=self.args.vq_steps, checkpointing_steps=self.args.vq_steps, eval_samples=256, report_to="none",
            seed=self.args.seed,
        )  # fmt: skip
        record |= self._run(train, self.work / "logs" / "vqvae-train.log", vq_dir / "model.safetensors", "vq_train")
        codes = vq_dir / "codes"
        extract = [self.python, str(SCRIPTS / "extract_codes.py"), "--model_name_or_path", str(vq_dir), "--dataset",
                   str(data), "--output_dir", str(codes), "--batch_size", "256"]  # fmt: skip
        record |= self._run(extract, self.work / "logs" / "extract.log", codes / "codes_info.json", "extract")
        self.results["vq"] = record
        return data, vq_dir, codes

    def reference(self, data: Path) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and labels of the first `--reference_images` test images (default: the whole split), in order."""
        from hf_vqvae import VQVAEConfig
        from hf_vqvae.evaluation import image_loader, load_images
        from hf_vqvae.loading import load_processor

        images_file = self.work / "data" / "fashion-mnist-test.pt"
        if not images_file.exists():
            vq = self.demo["vqvae"]["model_config"]
            processor = load_processor(None, VQVAEConfig(in_channels=vq["in_channels"], image_size=vq["image_size"]))
            images, labels = load_images(image_loader(str(data), "test", processor, 256), None, progress=False)
            save_images(images, images_file)
            torch.save(labels, images_file.with_suffix(".labels.pt"))
        labels = torch.load(images_file.with_suffix(".labels.pt"), weights_only=True)
        start = time.perf_counter()
        limit, folder = self.args.reference_images, self.work / "features" / "test"
        features = chunked_features(images_file, folder, *self._feature_workers(), limit, self.args.device)
        self.results["reference"] = {"images": len(features), "split_images": len(labels),
                                     "feature_seconds": feature_seconds(folder, limit),
                                     "feature_wall_seconds_this_run": time.perf_counter() - start}  # fmt: skip
        return features, labels[: len(features)]

    def _feature_workers(self) -> tuple[int, int]:
        return self.args.feature_processes, self.args.threads

    # ---------------------------------------------------------------------------------------------- stage 2
    def prior(self, name: str, codes: Path) -> Path:
        prior_dir = self.work / f"{name}-steps{self.args.prior_steps}-dropout{self.args.class_dropout}"
        settings = {k: v for k, v in self.demo["prior"].items() if k != "model_config"}
        train = [self.python, str(SCRIPTS / "train.py")] + train_arguments(
            settings, model="pixelsnail", dataset=str(codes), output_dir=str(prior_dir),
            model_config=PRIOR_CONFIGS[name], class_dropout=self.args.class_dropout,
            max_train_steps=self.args.prior_steps, eval_steps=self.args.prior_steps,
            checkpointing_steps=self.args.prior_steps, eval_samples=256, report_to="none", seed=self.args.seed,
        )  # fmt: skip
        record = self._run(
            train, self.work / "logs" / f"{prior_dir.name}.log", prior_dir / "model.safetensors", "train"
        )
        output = prior_dir / "eval_results.json"
        evaluate = [self.python, str(SCRIPTS / "evaluate.py"), "--model_name_or_path", str(prior_dir),
                    "--dataset", str(codes), "--split", "test", "--batch_size", "256", "--no_nll_bound",
                    "--output", str(output)]  # fmt: skip
        record |= self._run(evaluate, self.work / "logs" / f"{prior_dir.name}-eval.log", output, "eval")
        PixelSNAILModel, _ = _load_module_state()
        model = PixelSNAILModel.from_pretrained(prior_dir)
        record.update(
            config=PRIOR_CONFIGS[name],
            parameters=sum(p.numel() for p in model.parameters()),
            steps=json.loads((prior_dir / "metrics.json").read_text())["train/steps"],
            bits_per_code=json.loads(output.read_text())["metrics"]["bits_per_code"],
        )
        self.results["priors"][name] = record
        return prior_dir

    # ---------------------------------------------------------------------------------------------- stage 3
    def samples(self, name: str, prior_dir: Path, vq_dir: Path, scale: float, labels: torch.Tensor) -> torch.Tensor:
        """N images of prior `name` at guidance `scale` (saved), and their Inception features."""
        from hf_vqvae.images import save_sample_grid
        from hf_vqvae.loading import load_processor
        from hf_vqvae.sampling import generate_images

        PixelSNAILModel, VQVAEModel = _load_module_state()
        n, folder = len(labels), prior_dir / f"samples-n{len(labels)}-seed{self.args.seed}-s{scale:g}"
        images_path = folder / "images.pt"
        record: dict[str, Any] = {}
        if not images_path.exists():
            prior, vq_model = (
                PixelSNAILModel.from_pretrained(prior_dir).eval().to(self.args.device),
                VQVAEModel.from_pretrained(vq_dir).eval().to(self.args.device),
            )
            start = time.perf_counter()
            images = generate_images([prior], vq_model, n, class_labels=labels, guidance_scale=scale,
                                     batch_size=500, seed=self.args.seed, device="cpu")  # fmt: skip
            record["sample_device"] = self.args.device
            record["sample_wall_seconds"] = time.perf_counter() - start
            save_images(images, images_path)
            (folder / "record.json").write_text(json.dumps(record))
            # A grid for people: the same number of samples of each class (up to 10), one class per row.
            classes = range(int(labels.max()) + 1)
            columns = min(10, *(int((labels == c).sum()) for c in classes))
            rows = torch.cat([images[labels == c][:columns] for c in classes])
            processor = load_processor(str(vq_dir), vq_model.config)
            grid = RESULTS / f"{self.name}-{name}-s{scale:g}.png"
            save_sample_grid(processor.postprocess(rows), grid, columns=columns)
        start = time.perf_counter()
        features = chunked_features(images_path, folder / "features", *self._feature_workers(), None, self.args.device)
        record = json.loads((folder / "record.json").read_text())
        record["feature_seconds"] = feature_seconds(folder / "features")
        record["feature_wall_seconds_this_run"] = time.perf_counter() - start
        self.results["guidance"].setdefault(name, {})[f"{scale:g}"] = record
        return features

    def figures(self, features: torch.Tensor, reference: torch.Tensor) -> dict[str, Any]:
        """FID against all of `reference`; precision and recall against its first N images (N = len(features))."""
        from hf_vqvae.metrics.functional import frechet_distance_from_features, precision_recall

        n = len(features)
        precision, recall = precision_recall(reference[:n], features, k=self.args.k)
        fid = frechet_distance_from_features(features, reference)
        return {"fid": fid, "precision": precision, "recall": recall, "samples": n, "reference_images": len(reference)}

    def score(self, name: str, scale: float, features: torch.Tensor, reference: torch.Tensor) -> None:
        self.results["guidance"][name][f"{scale:g}"].update(self.figures(features, reference))

    def reconstructions(self, vq_dir: Path, reference: torch.Tensor) -> None:
        """The decoder's floor: the same figures for the VQ-VAE's reconstructions of the first N test images (what a
        perfect prior over codes could at best reach, up to sampling noise)."""
        _, VQVAEModel = _load_module_state()
        n, folder = self.args.fid_samples, vq_dir / f"reconstructions-n{self.args.fid_samples}"
        images_path = folder / "images.pt"
        if not images_path.exists():
            vq_model = VQVAEModel.from_pretrained(vq_dir).eval()
            test = torch.load(self.work / "data" / "fashion-mnist-test.pt", weights_only=True)[:n].float() / 127.5 - 1
            with torch.no_grad():
                save_images(vq_model(test).reconstruction, images_path)
        features = chunked_features(images_path, folder / "features", *self._feature_workers(), None, self.args.device)
        self.results["reconstructions"] = {**self.figures(features, reference),
                                           "feature_seconds": feature_seconds(folder / "features")}  # fmt: skip

    # ------------------------------------------------------------------------------------------------- all
    def main(self) -> None:
        args = self.args
        torch.set_num_threads(args.threads)
        self.results["machine"] = machine(args.device)
        self.save()
        data, vq_dir, codes = self.vq_and_codes()
        self.save()
        # Each prior trains in its own process; `--jobs` of them at once (on a GPU they share the card).
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            priors = dict(zip(args.priors, pool.map(lambda name: self.prior(name, codes), args.priors)))
        self.save()
        reference, labels = self.reference(data)
        self.save()
        if len(reference) < args.fid_samples:
            raise SystemExit(f"--fid_samples {args.fid_samples}: the test split has {len(reference)} images")
        sample_labels = labels[: args.fid_samples]
        self.reconstructions(vq_dir, reference)
        self.save()
        runs = [(args.guidance_prior, scale) for scale in args.scales]
        runs += [(name, 1.0) for name in args.priors if name != args.guidance_prior]
        for name, scale in runs:
            features = self.samples(name, priors[name], vq_dir, scale, sample_labels)
            self.score(name, scale, features, reference)
            self.save()
        self.results["targets"] = targets(self.results, args.guidance_prior)
        self.save()


def machine(device: str) -> dict[str, str]:
    """Where the figures were made, and which Inception file made the features (its SHA-256: FID is only comparable
    between runs of the same network)."""
    import hashlib

    from hf_vqvae.metrics.frechet import _fid_weights_path

    name = torch.cuda.get_device_name(device) if torch.device(device).type == "cuda" else "CPU"
    digest = hashlib.sha256(_fid_weights_path().read_bytes()).hexdigest()
    return {"device": f"{device} ({name})", "torch": torch.__version__, "inception_sha256": digest}


def targets(results: dict[str, Any], guided: str) -> list[str]:
    lines = []
    scales = results["guidance"].get(guided, {})
    if "1" in scales and len(scales) > 1:
        base = scales["1"]
        best_scale, best = min(scales.items(), key=lambda item: item[1]["fid"])
        drop = 1 - best["fid"] / base["fid"]
        verdict = "MET" if drop >= 0.30 and best["precision"] > base["precision"] else "MISSED"
        lines.append(
            f"{verdict}: best guidance scale {best_scale} has FID {best['fid']:.2f} vs {base['fid']:.2f} at s=1 "
            f"({100 * drop:.1f}% lower; target >= 30%), precision {best['precision']:.3f} vs {base['precision']:.3f}, "
            f"recall {best['recall']:.3f} vs {base['recall']:.3f}"
        )
    priors = results["priors"]
    for name in ("gated", "gated_deep"):
        if "cone" not in priors or name not in priors:
            continue
        cone, gated = priors["cone"], priors[name]
        verdict = "MET" if gated["bits_per_code"] < cone["bits_per_code"] else "MISSED"
        lines.append(
            f"{verdict}: gated PixelCNN ({name}) {gated['bits_per_code']:.4f} test bits/code vs cone prior "
            f"{cone['bits_per_code']:.4f} ({gated['steps']} vs {cone['steps']} steps, {gated['parameters']:,} vs "
            f"{cone['parameters']:,} parameters)"
        )
    return lines


def _seconds(record: dict[str, float] | None) -> str:
    """Process-seconds of feature chunks, noting chunks computed before timings were recorded."""
    if not record:
        return "-"
    text = f"{record['seconds']:.0f} s"
    if record["timed_chunks"] < record["chunks"]:
        text += f" ({record['timed_chunks']} of {record['chunks']} chunks timed)"
    return text


def where(results: dict[str, Any]) -> str:
    settings, machine = results["settings"], results.get("machine", {})
    if settings.get("device", "cpu") == "cpu":
        return f"{settings['threads']} torch thread(s) per process on a shared 2-core CPU: wall times are noisy"
    return (f"Sampling, training and Inception on {machine.get('device')}, torch {machine.get('torch')}; Inception "
            f"file SHA-256 {machine.get('inception_sha256', '-')[:16]}...")  # fmt: skip


def render_markdown(results: dict[str, Any]) -> str:
    settings, reference = results["settings"], results.get("reference", {})
    lines = ["# Sample quality of class-conditional priors (issue 16)", "", f"Command: `{results['command']}`", ""]
    if reference.get("images") == reference.get("split_images"):
        against = f"the whole test split ({reference.get('images')} images)"
    else:
        against = f"the first {reference.get('images')} of the test split's {reference.get('split_images')} images"
    lines.append(
        f"Fashion-MNIST; VQ-VAE with the demo's settings, {settings['vq_steps']} steps; priors "
        f"{settings['prior_steps']} steps each, class dropout {settings['class_dropout']}; N = "
        f"{settings['fid_samples']} samples per figure (labels of the first N test images), seed {settings['seed']}; "
        f"FID against {against}; precision and recall (k = {settings['k']}) against the first N test images. "
        f"{where(results)}. "
        f"Inception features of the reference images: {_seconds(reference.get('feature_seconds'))}."
    )
    if results["priors"]:
        lines += ["", "## Priors at equal steps and parameters", "",
                  "| prior | parameters | steps | test bits/code | FID (s=1) | train wall (s) | bits/code wall (s) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for name, record in results["priors"].items():
            fid = results["guidance"].get(name, {}).get("1", {}).get("fid")
            lines.append(
                f"| {name} | {record['parameters']:,} | {record['steps']} | {fmt(record['bits_per_code'])} | "
                f"{fmt(fid)} | {fmt(record['train_wall_seconds'], 3)} | {fmt(record['eval_wall_seconds'], 3)} |"
            )
    floor = results.get("reconstructions")
    if floor:
        lines += ["", "The decoder's floor, the same figures for the VQ-VAE's reconstructions of the first N test "
                  f"images: FID {fmt(floor['fid'])}, precision {fmt(floor['precision'], 3)}, recall "
                  f"{fmt(floor['recall'], 3)}."]  # fmt: skip
    for name, scales in results["guidance"].items():
        lines += ["", f"## Guidance scales, {name} prior", "",
                  "| guidance scale | FID | precision | recall | N | sampling wall (s) | Inception time |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
        for scale, record in sorted(scales.items(), key=lambda item: float(item[0])):
            lines.append(
                f"| {scale} | {fmt(record.get('fid'))} | {fmt(record.get('precision'), 3)} | "
                f"{fmt(record.get('recall'), 3)} | {record.get('samples', '-')} | "
                f"{fmt(record.get('sample_wall_seconds'), 3)} | {_seconds(record.get('feature_seconds'))} |"
            )
    if results.get("targets"):
        lines += ["", "## Targets", ""] + [f"- {line}" for line in results["targets"]]
    lines += ["", "## Commands of every figure", ""]
    vq = results.get("vq", {})
    for name in ("prepare", "vq_train", "extract"):
        if f"{name}_command" in vq:
            lines.append(f"- `{vq[f'{name}_command']}` ({fmt(vq.get(f'{name}_wall_seconds'), 3)} s)")
    for record in results["priors"].values():
        lines += [f"- `{record['train_command']}`", f"- `{record['eval_command']}`"]
    lines.append("- samples, FID, precision and recall: the command above (benchmarks/prior_quality.py)")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="quality.py priors", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vq_steps", type=int, default=1000)
    parser.add_argument("--prior_steps", type=int, default=3000)
    parser.add_argument("--class_dropout", type=float, default=0.1)
    parser.add_argument("--fid_samples", type=int, default=5000, help="N samples per figure")
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 1.0, 2.0, 4.0])
    parser.add_argument("--priors", nargs="+", default=["cone", "gated"], choices=list(PRIOR_CONFIGS))
    parser.add_argument("--guidance_prior", default="gated", choices=list(PRIOR_CONFIGS))
    parser.add_argument("--k", type=int, default=3, help="neighbours of the precision/recall manifolds")
    parser.add_argument(
        "--reference_images", type=int, default=None, help="FID reference: the first M test images (default: all)"
    )
    parser.add_argument(
        "--feature_processes", type=int, default=1, help="processes computing Inception features side by side"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="where priors sample and Inception runs (cpu, cuda)")
    parser.add_argument("--jobs", type=int, default=1, help="priors trained side by side (each its own process)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (OMP_NUM_THREADS) of every run")
    parser.add_argument("--work_dir", type=Path, default=REPO / "outputs" / "quality_priors")
    parser.add_argument("--results_name", default="prior_quality")
    args = parser.parse_args(argv)
    args.argv = argv
    PriorStudy(args).main()


if __name__ == "__main__":
    main(sys.argv[1:])
