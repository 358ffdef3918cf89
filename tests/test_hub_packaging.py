"""Hub packaging (issue 6): the one-repo generation bundle, the pipelines, the model cards and the push.

What is real here and what stands in for something:
* The models are small but trained (a few dozen Adam steps) on real photos, crops of scikit-image's sample photos,
  and every figure in the cards is measured on held-out crops the models never trained on.
* Repos are loaded by id (`pipeline(task, model="org/name", trust_remote_code=True)`) from an offline Hub cache
  filled the way a download fills it (`conftest.place_in_hub_cache`), in a subprocess where `import hf_vqvae`
  fails: what a Hub user who has only transformers gets.
* URLs are served by a local `http.server` on 127.0.0.1, the only network these machines allow.
* The Hub itself cannot be reached from here, so the push is tested against a stand-in for `HfApi.create_repo` and
  `HfApi.create_commit` that records the commit instead of sending it. Everything up to that boundary (building the
  folder, the file operations, the message) is the real code.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.util
import json
import logging
import re
import shutil
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, assert_state_dicts_bitwise_equal, run_without_hf_vqvae, train_command
from hub_parts import SIZE, build_parts
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModel

from hf_vqvae import (
    PixelSNAILConfig,
    VQGenerationConfig,
    VQGenerationModel,
    VQVAEImageToImagePipeline,
)
from hf_vqvae.evaluation import EVAL_RESULTS_FILE, weights_fingerprint
from hf_vqvae.hub import (
    REPO_TASKS,
    add_pipelines,
    build_model_repo,
    template_path,
)


# One torch thread in this process too, as hub_parts.SINGLE_THREAD gives the subprocesses: the models are tiny.
@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> SimpleNamespace:
    return build_parts(tmp_path_factory.mktemp("hub_packaging"))


# ---------------------------------------------------------------------------------------- the composite model
def test_bundle_holds_the_parts_bitwise_and_round_trips(parts, tmp_path):
    bundle = VQGenerationModel.from_parts(parts.vq2, [parts.top, parts.bottom])
    assert_state_dicts_bitwise_equal(parts.vq2.state_dict(), bundle.vq_model.state_dict())
    assert_state_dicts_bitwise_equal(parts.top.state_dict(), bundle.priors[0].state_dict())
    assert_state_dicts_bitwise_equal(parts.bottom.state_dict(), bundle.priors[1].state_dict())

    bundle.save_pretrained(tmp_path)
    loaded = VQGenerationModel.from_pretrained(tmp_path)
    assert_state_dicts_bitwise_equal(bundle.state_dict(), loaded.state_dict())
    assert_state_dicts_bitwise_equal(bundle.state_dict(), load_file(tmp_path / "model.safetensors"))
    assert loaded.config.to_dict()["vq_config"] == bundle.config.to_dict()["vq_config"]
    assert loaded.config.to_dict()["prior_configs"] == bundle.config.to_dict()["prior_configs"]

    # The bundle samples exactly what the parts sample: the priors top-down, then the decoder.
    pixels, codes = loaded.generate(3, generator=torch.Generator().manual_seed(5), return_codes=True)
    generator = torch.Generator().manual_seed(5)
    top = parts.top.generate(3, generator=generator)
    bottom = parts.bottom.generate(3, condition=top, generator=generator)
    assert torch.equal(codes[0], top) and torch.equal(codes[1], bottom)
    assert torch.equal(pixels, parts.vq2.decode([top, bottom]).clamp(-1, 1))
    assert pixels.shape == (3, 3, SIZE, SIZE)


def test_bundle_config_rejects_priors_that_do_not_fit_the_vq_model(parts):
    vq_config = parts.vq.config
    with pytest.raises(ValueError, match="level 0 of the VQ model has 4x4 maps of 32 codes"):
        VQGenerationConfig(vq_config=vq_config, prior_configs=[PixelSNAILConfig(num_embeddings=64, latent_height=4,
                                                                                latent_width=4)])  # fmt: skip
    with pytest.raises(ValueError, match="must be conditioned on level 0"):
        VQGenerationConfig(
            vq_config=parts.vq2.config,
            prior_configs=[parts.top.config, PixelSNAILConfig(num_embeddings=16, latent_height=8, latent_width=8)],
        )
    with pytest.raises(ValueError, match="at least one PixelSNAIL config"):
        VQGenerationConfig(vq_config=parts.vq.config, prior_configs=[])
    bundle = VQGenerationModel.from_parts(parts.vq, [parts.prior])
    with pytest.raises(ValueError, match=r"class_labels.*lie in \[0, 3\)"):
        bundle.generate(2, class_labels=[0, 3])


# ----------------------------------------------------------------------------------------------- the pipelines
def test_custom_pipelines_are_merged_not_overwritten(parts, tmp_path):
    config = json.loads((parts.repos["org/generation-photos"] / "config.json").read_text())
    assert set(config["custom_pipelines"]) == set(REPO_TASKS["vq_generation"])
    assert config["custom_pipelines"]["unconditional-image-generation"] == {
        "impl": "pipeline_vqvae.VQGenerationPipeline",
        "pt": ["AutoModel"],
        "type": "image",
    }
    # A real Pipeline.save_pretrained replaces the entries with its own task (SPEC section 4); add_pipelines merges.
    model = VQGenerationModel.from_parts(parts.vq, [parts.prior])
    reconstruct = VQVAEImageToImagePipeline(model=model, image_processor=parts.processor, task="image-to-image")
    reconstruct.save_pretrained(tmp_path)
    assert set(json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]) == {"image-to-image"}
    merged = add_pipelines(tmp_path, ["image-feature-extraction", "unconditional-image-generation"])
    assert set(merged) == {"image-to-image", "image-feature-extraction", "unconditional-image-generation"}
    assert (tmp_path / "pipeline_vqvae.py").exists()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path):
    """An HTTP server for `folder` on 127.0.0.1 (loopback: the only network here); yields its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# Run once, in one process where `import hf_vqvae` fails (a Python start costs seconds here): every pipeline by repo
# id from the offline cache, then every card's Python blocks exactly as written. PARAMS is replaced by a JSON file.
REMOTE = """
import json, os, re
import numpy as np
from PIL import Image
from transformers import pipeline

args = json.load(open(PARAMS))
inputs = args["inputs"]
out = {}
as_array = lambda image: np.asarray(image)

reconstruct = pipeline("image-to-image", model="org/vqvae-photos", trust_remote_code=True)
out["rec_path"] = as_array(reconstruct(inputs + "/chelsea.png"))
out["rec_pil"] = as_array(reconstruct(Image.open(inputs + "/coffee.png")))
out["rec_array"] = as_array(reconstruct(np.asarray(Image.open(inputs + "/coffee.png"))))
out["rec_url"] = as_array(reconstruct(args["url"]))
batch = reconstruct([inputs + "/chelsea.png", Image.open(inputs + "/coffee.png"), args["url"]], batch_size=2)
for index, image in enumerate(batch):
    out[f"rec_batch_{index}"] = as_array(image)

extract = pipeline("image-feature-extraction", model="org/vqvae-photos", trust_remote_code=True)
features = extract(inputs + "/chelsea.png", return_tensors=True)
out["codes"], out["quantized"] = features["codes"].numpy(), features["quantized"].numpy()
listed = extract([inputs + "/chelsea.png", inputs + "/coffee.png"], batch_size=2)
out["codes_list_1"] = np.asarray(listed[1]["codes"])

generate = pipeline("unconditional-image-generation", model="org/generation-photos", trust_remote_code=True)
images = generate(num_images=3, seed=7, class_labels="coffee", temperature=0.8, top_k=8)
out["gen_named"] = np.stack([as_array(i) for i in images])
out["gen_id"] = np.stack([as_array(i) for i in generate(3, seed=7, class_labels=1, temperature=0.8, top_k=8)])
out["gen_cycle"] = np.stack([as_array(i) for i in generate(4, seed=1)])
bundle_reconstruct = pipeline("image-to-image", model="org/generation-photos", trust_remote_code=True)
out["bundle_rec"] = as_array(bundle_reconstruct(inputs + "/chelsea.png"))

generate2 = pipeline("unconditional-image-generation", model="org/generation2-photos", trust_remote_code=True)
out["gen2"] = np.stack([as_array(i) for i in generate2(num_images=2, seed=0)])
extract2 = pipeline("image-feature-extraction", model="org/generation2-photos", trust_remote_code=True)
for level, codes in enumerate(extract2(inputs + "/chelsea.png", return_tensors=True)["codes"]):
    out[f"codes2_{level}"] = codes.numpy()
np.savez(args["out"], **out)
modules = {name: type(p).__module__ for name, p in (("reconstruct", reconstruct), ("extract", extract),
                                                     ("generate", generate), ("generate2", generate2))}
modules["model"] = type(generate.model).__module__

os.chdir(args["workdir"])
ran = []
for repo, readme in args["readmes"].items():
    for index, block in enumerate(re.findall(r"```python\\n(.*?)```", open(readme).read(), flags=re.S)):
        exec(compile(block, f"{repo} README block {index}", "exec"), {})
        ran.append(f"{repo}#{index}")
print(json.dumps({"modules": modules, "ran": ran, "files": sorted(os.listdir("."))}))
"""


@pytest.fixture(scope="module")
def remote(parts, tmp_path_factory) -> SimpleNamespace:
    """The REMOTE run's report and arrays."""
    folder = tmp_path_factory.mktemp("remote")
    (folder / "work").mkdir()
    with serve(parts.inputs) as base_url:
        params = {
            "inputs": str(parts.inputs),
            "url": f"{base_url}/rocket.png",
            "out": str(folder / "out.npz"),
            "workdir": str(folder / "work"),
            "readmes": {repo_id: str(repo / "README.md") for repo_id, repo in parts.repos.items()},
        }
        (folder / "params.json").write_text(json.dumps(params))
        env = {**parts.env, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        report = run_without_hf_vqvae(REMOTE.replace("PARAMS", repr(str(folder / "params.json"))), env=env)
    return SimpleNamespace(**report, arrays=np.load(folder / "out.npz"))


def _expected_reconstruction(model, processor, image) -> np.ndarray:
    with torch.no_grad():
        pixels = processor(image, return_tensors="pt").pixel_values
        return np.asarray(processor.postprocess(model(pixels).reconstruction.clamp(-1, 1))[0])


def _expected_samples(model, processor, num_images: int, seed: int, **kwargs) -> np.ndarray:
    bundle = model.eval()
    pixels = bundle.generate(num_images, generator=torch.Generator().manual_seed(seed), **kwargs)
    return np.stack([np.asarray(image) for image in processor.postprocess(pixels)])


def _close(actual: np.ndarray, expected: np.ndarray) -> bool:
    """uint8 images equal up to one level (float rounding of another process's thread split)."""
    return actual.shape == expected.shape and int(np.abs(actual.astype(int) - expected.astype(int)).max()) <= 1


def test_every_pipeline_from_the_offline_hub_without_hf_vqvae(parts, remote):
    # Every class came from the repos' own code files.
    modules = remote.modules
    assert all(module.startswith("transformers_modules.") for module in modules.values()), modules
    assert modules["generate"].endswith("pipeline_vqvae") and modules["model"].endswith("modeling_generation")
    out = remote.arrays

    vq, processor = parts.vq, parts.processor
    chelsea, coffee = Image.open(parts.inputs / "chelsea.png"), Image.open(parts.inputs / "coffee.png")
    rocket = Image.open(parts.inputs / "rocket.png")
    assert out["rec_path"].shape == (SIZE, SIZE, 3)
    assert _close(out["rec_path"], _expected_reconstruction(vq, processor, chelsea))
    assert _close(out["rec_pil"], _expected_reconstruction(vq, processor, coffee))
    assert _close(out["rec_array"], out["rec_pil"])
    assert _close(out["rec_url"], _expected_reconstruction(vq, processor, rocket))
    for index, key in enumerate(("rec_path", "rec_pil", "rec_url")):
        assert _close(out[f"rec_batch_{index}"], out[key]), f"batched input {index} differs from its single run"
    assert _close(out["bundle_rec"], out["rec_path"])

    pixels = processor(chelsea, return_tensors="pt").pixel_values
    codes = vq.encode(pixels)[0]
    assert np.array_equal(out["codes"], codes.numpy())
    assert np.allclose(out["quantized"], vq.quantizer.embed(codes[None])[0].detach().numpy(), atol=1e-6)
    assert np.array_equal(out["codes_list_1"], vq.encode(processor(coffee, return_tensors="pt").pixel_values)[0])
    top, bottom = parts.vq2.encode(pixels)
    assert np.array_equal(out["codes2_0"], top[0].numpy()) and np.array_equal(out["codes2_1"], bottom[0].numpy())

    bundle = VQGenerationModel.from_parts(vq, [parts.prior])
    expected = _expected_samples(bundle, processor, 3, 7, class_labels=1, temperature=0.8, top_k=8)
    assert _close(out["gen_named"], expected) and np.array_equal(out["gen_named"], out["gen_id"])
    assert _close(out["gen_cycle"], _expected_samples(bundle, processor, 4, 1))  # classes 0, 1, 2, 0
    bundle2 = VQGenerationModel.from_parts(parts.vq2, [parts.top, parts.bottom])
    assert _close(out["gen2"], _expected_samples(bundle2, processor, 2, 0))


# ---------------------------------------------------------------------------------------------- model cards
def test_cards_parse_validate_and_carry_the_measured_results(parts):
    expected = {
        "org/vqvae-photos": ("image-to-image", [parts.vq_dir]),
        "org/vqvae2-photos": ("image-to-image", [parts.vq2_dir]),
        "org/prior-photos": (None, [parts.prior_dir]),
        "org/generation-photos": ("unconditional-image-generation", [parts.vq_dir, parts.prior_dir]),
        "org/generation2-photos": ("unconditional-image-generation", [parts.vq2_dir, parts.top_dir, parts.bottom_dir]),
    }
    for repo_id, (pipeline_tag, runs) in expected.items():
        folder = parts.repos[repo_id]
        text = (folder / "README.md").read_text()
        assert "{{" not in text and "{%" not in text, f"{repo_id}: unrendered template"
        # A folder with a web demo says so, and how to run it; a prior alone has none.
        assert ("## Try it in a web demo" in text) == (pipeline_tag is not None) == (folder / "app.py").exists()
        # `ModelCard.validate` posts the card to the Hub's /api/validate-yaml, unreachable here; the same checks
        # offline are the ones ModelCard.load runs (YAML, ModelCardData, the model-index parser), plus our own.
        card = ModelCard.load(folder / "README.md")
        data = card.data
        assert data.library_name == "transformers" and data.license == "apache-2.0"
        assert data.pipeline_tag == pipeline_tag
        assert "vq-vae" in data.tags and "custom_code" in data.tags
        name, results = model_index_to_eval_results(data.to_dict()["model-index"])
        assert name == repo_id.split("/")[1] and results == data.eval_results
        assert all(
            result.dataset_name.startswith("Photo crops") and result.dataset_split == "test" for result in results
        )

        # Every measured eval/* figure of every run is in the model-index, rounded, and nothing else is.
        measured = []
        for run in runs:
            metrics = json.loads((run / "metrics.json").read_text())
            measured += [value for key, value in metrics.items() if key.startswith("eval/")]
        reported = [result.metric_value for result in results]
        assert len(reported) == len(measured), (repo_id, reported, measured)
        for value in reported:
            assert any(value == pytest.approx(figure, abs=0.05) for figure in measured), (repo_id, value, measured)
        for result in results:
            row = f"| {result.metric_name} | {result.metric_value} |"
            assert row in text, (repo_id, row)

        # Pictures: every image the card shows or the widget uses is in the repo.
        shown = set(re.findall(r"\]\((images/[^)]+)\)", text))
        for example in data.to_dict().get("widget", []):
            shown |= {example["output"]["url"]} | ({example["src"]} if "src" in example else set())
        assert shown and all((folder / path).is_file() for path in shown), (repo_id, shown)
        # The training configuration: each run's settings appear.
        assert "| learning_rate | 0.003 |" in text and "| steps trained |" in text

    generation = ModelCard.load(parts.repos["org/generation-photos"] / "README.md").data
    assert generation.widget == [{"example_title": "Samples (seed 3)", "output": {"url": "images/samples.png"}}]
    assert "class-conditional" in generation.tags
    assert json.loads((parts.repos["org/generation-photos"] / "config.json").read_text())["id2label"] == {
        "0": "astronaut", "1": "coffee", "2": "chelsea"
    }  # fmt: skip
    vqvae = ModelCard.load(parts.repos["org/vqvae-photos"] / "README.md").data
    assert vqvae.widget[0]["src"] == "images/example_input.png"
    assert template_path("vq_generation").is_file()


def test_cards_report_evaluate_results_only_for_the_weights_they_measured(parts, tmp_path, caplog):
    # A run folder with scripts/evaluate.py's eval_results.json: the card reports those figures (here the
    # whole-split SSIM and decoder bits that training does not measure) while model.safetensors is the file they
    # measured, and falls back to metrics.json with a warning once the weights have changed.
    run_dir = tmp_path / "run"
    shutil.copytree(parts.vq_dir, run_dir)
    figures = {"mse": 0.0123, "psnr": 25.5, "ssim": 0.8125, "reconstruction_bits_per_dim": 3.25,
               "perplexity": 40.5, "codebook_used": 0.75, "num_images": 2000}  # fmt: skip
    evaluation = {"metrics": figures, "evaluation": {"weights_sha256": weights_fingerprint(run_dir)}}
    (run_dir / EVAL_RESULTS_FILE).write_text(json.dumps(evaluation))

    card = ModelCard.load(build_model_repo(run_dir, tmp_path / "repo", "org/evaluated") / "README.md")
    reported = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert reported == {"mse": 0.0123, "psnr": 25.5, "ssim": 0.8125, "reconstruction_bits_per_dim": 3.25,
                        "perplexity": 40.5, "codebook_usage": 0.75}  # fmt: skip
    assert "Measured by `scripts/evaluate.py` on 2000 images" in card.text

    model = AutoModel.from_pretrained(run_dir)
    with torch.no_grad():
        next(model.parameters()).add_(0.5)  # retrained, say: the figures no longer describe these weights
    model.save_pretrained(run_dir)
    with caplog.at_level(logging.WARNING, logger="hf_vqvae.hub"):
        card = ModelCard.load(build_model_repo(run_dir, tmp_path / "repo", "org/evaluated") / "README.md")
    assert "measured other weights" in caplog.text
    training = json.loads((run_dir / "metrics.json").read_text())
    reported = {result.metric_type: result.metric_value for result in card.data.eval_results}
    assert "ssim" not in reported and reported["mse"] == pytest.approx(training["eval/mse"], abs=1e-5)
    assert "Measured at the end of training" in card.text


def test_card_usage_snippets_run_as_written(remote):
    """Each card's Python blocks, exactly as written, by repo id, where only transformers is installed (REMOTE)."""
    assert len(remote.ran) == 2 + 2 + 1 + 2 + 2, remote.ran  # two blocks per card, one for the prior
    assert {"reconstruction.png", "sample.png"} <= set(remote.files)


# ------------------------------------------------------------------------------------------------------ push
class RecordingHub:
    """Stand-in for the Hub at the HfApi boundary: the Hub is unreachable from here, so `create_repo` and
    `create_commit` record their arguments instead of sending them."""

    def __init__(self, monkeypatch) -> None:
        self.repos: list[dict] = []
        self.commits: list[dict] = []
        hub = self

        def create_repo(self, repo_id, **kwargs):
            hub.repos.append({"repo_id": repo_id, **kwargs})
            return f"https://huggingface.co/{repo_id}"

        def create_commit(self, repo_id, operations, **kwargs):
            hub.commits.append({"repo_id": repo_id, "operations": list(operations), **kwargs})
            return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123abc")

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)

    def single_commit(self, repo_id: str, folder: Path) -> dict[str, bytes]:
        """Asserts one repo creation and one commit holding exactly `folder`'s files; returns path -> bytes."""
        assert [repo["repo_id"] for repo in self.repos] == [repo_id] and self.repos[0]["exist_ok"] is True
        assert len(self.commits) == 1, f"{len(self.commits)} commits"
        commit = self.commits[0]
        assert commit["repo_id"] == repo_id
        assert all(isinstance(op, CommitOperationAdd) for op in commit["operations"])
        files = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in commit["operations"]}
        on_disk = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
        assert files == on_disk
        return files


def _required_code(folder: Path) -> set[str]:
    """The .py files trust_remote_code needs: the auto_map and custom_pipelines modules and, recursively, their
    relative imports."""
    config = json.loads((folder / "config.json").read_text())
    processor = json.loads((folder / "preprocessor_config.json").read_text())
    pending = [ref.split(".")[0] for ref in config["auto_map"].values()]
    pending += [entry["impl"].split(".")[0] for entry in config["custom_pipelines"].values()]
    pending += [ref.split(".")[0] for ref in processor["auto_map"].values()]
    needed: set[str] = set()
    while pending:
        module = pending.pop()
        if module in needed:
            continue
        needed.add(module)
        pending += re.findall(r"^\s*from \.(\w+) import", (folder / f"{module}.py").read_text(), flags=re.M)
    return {f"{module}.py" for module in needed}


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve the script's annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_push_to_hub_script_uploads_a_generation_bundle_in_one_commit(parts, tmp_path, monkeypatch):
    hub = RecordingHub(monkeypatch)
    push = _load_script("push_to_hub")
    repo_dir = tmp_path / "bundle"
    record = push.main(["--vq_model", str(parts.vq_dir), "--priors", str(parts.prior_dir), "--hub_model_id",
                        "me/photos-generation", "--repo_dir", str(repo_dir)])  # fmt: skip
    files = hub.single_commit("me/photos-generation", repo_dir)
    needed = {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"}
    pictures = ("samples", "reconstructions", "example_input", "example_reconstruction")
    needed |= {f"images/{name}.png" for name in pictures}
    needed |= _required_code(repo_dir)
    assert {"modeling_generation.py", "pipeline_vqvae.py", "image_processing_vqvae.py", "sampling.py"} <= needed
    assert needed <= set(files), needed - set(files)
    assert "me/photos-generation" in files["README.md"].decode()  # the card names the repo it is pushed to
    message = hub.commits[0]["commit_message"]
    assert message.startswith("Upload VQ-VAE generation bundle") and "model card" in message
    assert "Bits per image dimension" in hub.commits[0]["commit_description"]
    assert record["commit_url"].endswith("/commit/0123abc")


def test_train_push_to_hub_builds_and_pushes_the_run(fashion_mnist, tmp_path, monkeypatch):
    hub = RecordingHub(monkeypatch)
    train_script = _load_script("train")
    output = tmp_path / "run"
    args = train_script.parse_args(
        train_command(fashion_mnist, output, max_train_steps=2, eval_steps=2)
        + ["--push_to_hub", "--hub_model_id", "me/vqvae-fashion", "--hub_private", "true"]
    )
    assert args.push_to_hub and args.hub_model_id == "me/vqvae-fashion" and args.hub_private is True
    train_script.main(args)
    assert hub.repos[0]["private"] is True
    files = hub.single_commit("me/vqvae-fashion", output / "hub")
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "README.md"} <= set(files)
    assert _required_code(output / "hub") <= set(files)
    assert any(path.startswith("images/") for path in files)
    card = ModelCard.load(output / "hub" / "README.md")
    assert card.data.datasets == ["zalando-datasets/fashion_mnist"]
    mse = json.loads((output / "metrics.json").read_text())["eval/mse"]
    assert card.data.eval_results[0].metric_value == pytest.approx(mse, abs=1e-5)
