"""The web demo (issue 17): `app.py` in every Hub-ready folder, its Space variant, used as a person uses it, in a
real browser.

What is real here:
* The models are small but trained (a few dozen Adam steps) on crops of scikit-image's real photos, written as
  training runs and packaged by the real `hf_vqvae.hub` builders; the Space folder is the real `build_space`.
* The demo runs as `python app.py --port P --host 127.0.0.1` in a subprocess in which `import hf_vqvae` fails (as on
  a Space, where only the requirements are installed): once from the Space folder (the model it sits beside), once
  with `--model org/name` from an offline Hub cache filled the way a download fills it.
* Debian's Chromium, headless, driven by selenium through chromedriver, uploads a real photo
  (`skimage.data.astronaut()` as PNG) and malformed files, presses the buttons and reads back the images the page
  shows. External host names resolve nowhere (`--host-resolver-rules`): the page works on loopback alone.
* The expected pictures and the PSNR are computed here, with the package's own models, processor and metrics.

The browser and app machinery is in `browser_helpers.py`. Screenshots are kept under the test's tmp_path and
copied to `outputs/test-artifacts/`.
The test is skipped only where no Chromium and chromedriver are found (`make test` installs them, see data-deps).
"""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from browser_helpers import (
    CHROMEDRIVER,
    CHROMIUM,
    App,
    app_env,
    browser_session,
    css,
    images_in,
    open_page,
    running,
    screenshot,
    text_of,
    toasts,
    torch_threads,
    upload,
    wait_for,
)
from conftest import REPO, place_in_hub_cache
from hub_parts import train
from PIL import Image
from skimage import data as skimage_data

from hf_vqvae import (
    PixelSNAILConfig,
    PixelSNAILModel,
    VQGenerationModel,
    VQVAE2Config,
    VQVAE2Model,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
)
from hf_vqvae.data import photo_crop_tensor, skimage_photos
from hf_vqvae.hub import DatasetInfo, build_generation_repo, build_model_repo
from hf_vqvae.metrics.functional import psnr_per_image
from hf_vqvae.space import app_template, build_space, pinned_requirements, write_app
from hf_vqvae.space.build import GRADIO_VERSION

pytestmark = pytest.mark.slow

PHOTOS = ("astronaut", "coffee", "chelsea")
SIZE = 16


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):  # as the app processes run
        yield


# ------------------------------------------------------------------------------------------------- the models
def write_run(folder: Path, model, metrics: dict, steps: int) -> Path:
    """A folder as scripts/train.py leaves it: the final model (+ processor), metrics.json, train_args.json."""
    model.save_pretrained(folder)
    if hasattr(model.config, "image_size"):
        VQVAEImageProcessor.for_model_size(SIZE, 3).save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({**metrics, "train/steps": steps}))
    (folder / "train_args.json").write_text(json.dumps({"max_train_steps": steps, "learning_rate": 3e-3, "seed": 0}))
    return folder


@torch.no_grad()
def reconstruction_metrics(model, pixels: torch.Tensor) -> dict[str, float]:
    reconstruction = model(pixels).reconstruction.clamp(-1, 1)
    return {
        "eval/mse": float((reconstruction - pixels).square().mean()),
        "eval/psnr": float(psnr_per_image(reconstruction, pixels).mean()),
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> SimpleNamespace:
    """A generation bundle (VQ-VAE + class-conditional prior) and a VQ-VAE-2, trained on real photo crops and
    packaged by the hub builders; the bundle's Space folder; an offline Hub cache holding the VQ-VAE-2 repo."""
    root = tmp_path_factory.mktemp("space_app")
    torch.manual_seed(0)
    photos = skimage_photos(PHOTOS)
    pixels, labels = [], []
    for label, photo in enumerate(photos):
        pixels.append(photo_crop_tensor(SIZE, 32, seed=label, photos=[photo]))
        labels += [label] * 32
    pixels, labels = torch.cat(pixels), torch.tensor(labels)
    held_out = photo_crop_tensor(SIZE, 24, seed=100, photos=photos)

    def batch(step: int, size: int = 16) -> slice:
        start = (step * size) % (len(pixels) - size)
        return slice(start, start + size)

    vq = VQVAEModel(VQVAEConfig(image_size=SIZE, hidden_channels=16, residual_channels=8, num_embeddings=32,
                                embedding_dim=8))  # fmt: skip
    train(vq, lambda step: vq(pixels[batch(step)]).loss, steps=40)
    prior = PixelSNAILModel(
        PixelSNAILConfig(num_embeddings=32, latent_height=4, latent_width=4, hidden_channels=16, num_stages=1,
                         num_residual_blocks=1, num_attention_heads=2, kernel_size=3, num_classes=len(PHOTOS))
    )  # fmt: skip
    codes = vq.encode(pixels)
    train(prior, lambda s: prior(codes[batch(s)], class_labels=labels[batch(s)], labels=codes[batch(s)]).loss, 30)
    vq2 = VQVAE2Model(VQVAE2Config(image_size=SIZE, hidden_channels=16, residual_channels=8,
                                   downsample_factors=[4, 2], num_embeddings=16, embedding_dim=8))  # fmt: skip
    train(vq2, lambda step: vq2(pixels[batch(step)]).loss, steps=30)

    vq_run = write_run(root / "vqvae", vq, reconstruction_metrics(vq, held_out), 40)
    with torch.no_grad():
        nll = float(prior(vq.encode(held_out), class_labels=torch.arange(24) % 3, labels=vq.encode(held_out)).loss)
    prior_run = write_run(root / "prior", prior, {"eval/nll_nats_per_code": nll}, 30)
    vq2_run = write_run(root / "vqvae2", vq2, reconstruction_metrics(vq2, held_out), 30)
    dataset = DatasetInfo(name="scikit-image sample photos", class_names=list(PHOTOS))

    repos = root / "repos"
    generation = build_generation_repo(
        vq_run, [prior_run], repos / "generation", "org/generation-photos", num_samples=4, dataset=dataset
    )
    vqvae2 = build_model_repo(vq2_run, repos / "vqvae2", "org/vqvae2-photos", dataset=dataset)
    prior_repo = build_model_repo(prior_run, repos / "prior", "org/prior-photos", dataset=dataset)
    space = build_space(generation, root / "space", model_id="org/generation-photos")
    hf_home = root / "hf_home"
    place_in_hub_cache(vqvae2, "org/vqvae2-photos", hf_home)

    photo = root / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)
    return SimpleNamespace(
        root=root, generation=generation, vqvae2=vqvae2, prior_repo=prior_repo, space=space, hf_home=hf_home,
        photo=photo, vq=vq, vq2=vq2, prior=prior,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------- the Space folder
def test_every_image_repo_carries_the_app(folders):
    template = app_template().read_bytes()
    common = app_template().with_name("demo_common.py").read_bytes()
    for folder in (folders.generation, folders.vqvae2):
        assert (folder / "app.py").read_bytes() == template
        assert (folder / "demo_common.py").read_bytes() == common  # what the app imports its shared parts from
        assert (folder / "requirements.txt").read_text().split() == pinned_requirements()
    # A prior alone makes code maps, not images: no demo; its generation bundle is the demo.
    assert not (folders.prior_repo / "app.py").exists()
    assert not (folders.prior_repo / "requirements.txt").exists()


def test_the_space_folder_is_complete(folders):
    template = app_template().read_bytes()
    assert write_app(folders.prior_repo) is None
    with pytest.raises(ValueError, match="serves no pipeline a demo drives"):
        build_space(folders.prior_repo, folders.root / "prior-space")

    from huggingface_hub import SpaceCard

    space = folders.space
    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
    assert card.data.sdk_version == GRADIO_VERSION
    assert card.data.license == "apache-2.0"  # the model card's
    assert card.data.models == ["org/generation-photos"]
    assert card.data.title and card.data.emoji and card.data.colorFrom and card.data.colorTo
    assert 0 < len(card.data.to_dict()["short_description"]) <= 60  # the Hub's limit
    # The model card travels as model_card.md; the weights, code and processor config as they are.
    model_card = (folders.generation / "README.md").read_text()
    assert (space / "model_card.md").read_text() == model_card
    files = ("config.json", "model.safetensors", "preprocessor_config.json", "pipeline_vqvae.py", "demo_common.py")
    for name in files:
        assert (space / name).read_bytes() == (folders.generation / name).read_bytes(), name
    assert (space / "app.py").read_bytes() == template

    requirements = (space / "requirements.txt").read_text().split()
    assert requirements == pinned_requirements()
    pins = dict(line.split("==") for line in requirements)
    assert pins["gradio"] == metadata.version("gradio") == GRADIO_VERSION  # the version installed and tested here
    assert pins["transformers"] == __import__("transformers").__version__
    assert pins["huggingface_hub"] == __import__("huggingface_hub").__version__
    assert pins["torch"] == torch.__version__.split("+")[0]


@pytest.fixture(scope="module")
def apps(folders, tmp_path_factory):
    """The Space folder's app (generation bundle), and the package's template serving the VQ-VAE-2 by Hub id."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium / chromedriver (Debian: apt-get install chromium chromium-driver; make data-deps)")
    logs = tmp_path_factory.mktemp("app_logs")
    env = app_env(logs, folders.hf_home)
    empty = tmp_path_factory.mktemp("elsewhere")
    with running(
        App(folders.space / "app.py", folders.space, logs / "space.log", env),
        App(app_template(), empty, logs / "hub.log", env, "--model", "org/vqvae2-photos"),
    ) as (space, hub):
        yield SimpleNamespace(space=space, hub=hub)


@pytest.fixture(scope="module")
def browser(apps, tmp_path_factory):
    with browser_session(tmp_path_factory.mktemp("chromium_profile")) as driver:
        yield driver


def enlarged(image: Image.Image, factor: int) -> np.ndarray:
    image = image.convert("RGB")
    return np.asarray(image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST))


def reconstruct(driver, app: App, photo: Path) -> str:
    open_page(driver, app.url)
    upload(driver, photo)
    css(driver, "#reconstruct-button")[0].click()
    wait_for(driver, lambda d: "PSNR" in text_of(d, "reconstruction-status") and css(d, "#code-maps img"), "results")
    return text_of(driver, "reconstruction-status")


def assert_code_map_matches(picture: Image.Image, codes: torch.Tensor) -> None:
    """The picture shows the code map: square blocks of one colour each, and one colour per code id."""
    array = np.asarray(picture)
    height, width = codes.shape
    block = array.shape[0] // height
    assert array.shape[:2] == (height * block, width * block)
    colours = {}
    for row in range(height):
        for col in range(width):
            cell = array[row * block : (row + 1) * block, col * block : (col + 1) * block].reshape(-1, 3)
            assert (cell == cell[0]).all(), "a code is one flat square"
            colours.setdefault(int(codes[row, col]), set()).add(tuple(cell[0]))
    assert all(len(shades) == 1 for shades in colours.values()), "one code, one colour"
    assert len({next(iter(shades)) for shades in colours.values()}) == len(colours), "different codes, colours"


# ---------------------------------------------------------------------------------------------- the browser
def test_reconstruction_tab_in_a_browser(folders, apps, browser, tmp_path):
    status = reconstruct(browser, apps.space, folders.photo)
    shot = screenshot(browser, tmp_path, "space_app_reconstruction")

    processor = VQVAEImageProcessor.from_pretrained(folders.space)
    pixels = processor(Image.open(folders.photo), return_tensors="pt").pixel_values
    with torch.no_grad():
        reconstruction = folders.vq(pixels).reconstruction.clamp(-1, 1)
        codes = folders.vq.encode(pixels)[0]
    factor = 256 // SIZE  # pictures are enlarged to at least 256 pixels, by a whole factor

    seen, rebuilt = images_in(browser, "#model-input img")[0], images_in(browser, "#reconstruction img")[0]
    assert seen.size == rebuilt.size == (SIZE * factor, SIZE * factor)
    assert np.asarray(seen).std() > 0 and np.asarray(rebuilt).std() > 0
    # What the page shows is the model's input and the model's reconstruction of it.
    assert np.array_equal(np.asarray(seen), enlarged(processor.postprocess(pixels)[0], factor))
    expected = enlarged(processor.postprocess(reconstruction)[0], factor).astype(int)
    assert np.abs(np.asarray(rebuilt).astype(int) - expected).max() <= 1

    expected_psnr = float(psnr_per_image(reconstruction, pixels)[0])
    shown = css(browser, "#psnr textarea, #psnr input")[0].get_attribute("value")
    assert abs(float(shown) - expected_psnr) < 0.01, (shown, expected_psnr)
    assert f"PSNR {float(shown):.2f} dB" in status and "512x512" in status

    (code_map,) = images_in(browser, "#code-maps img")
    assert code_map.size == (256, 256)
    assert_code_map_matches(code_map, codes)
    assert shot.stat().st_size > 0


def test_generation_tab_in_a_browser(folders, apps, browser, tmp_path):
    from selenium.webdriver.common.keys import Keys

    open_page(browser, apps.space.url)
    (tab,) = [button for button in css(browser, "button[role='tab']") if button.text.strip() == "Generation"]
    tab.click()
    wait_for(browser, lambda d: css(d, "#generate-button") and css(d, "#generate-button")[0].is_displayed(), "tab")

    css(browser, "#class input")[0].click()
    wait_for(browser, lambda d: [o for o in css(d, "li[role='option']") if o.text.strip() == "coffee"], "classes")
    [option for option in css(browser, "li[role='option']") if option.text.strip() == "coffee"][0].click()
    for element_id, value in (("num-images", "4"), ("top-k", "5"), ("seed", "7"), ("temperature", "0.9")):
        field = css(browser, f"#{element_id} input[type='number']")[0]
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(value, Keys.TAB)
    css(browser, "#generate-button")[0].click()
    wait_for(
        browser, lambda d: len(css(d, "#samples img")) == 4 and "seed 7" in text_of(d, "generation-status"), "samples"
    )
    screenshot(browser, tmp_path, "space_app_generation")

    samples = images_in(browser, "#samples img")
    size = 128  # samples are enlarged to at least 128 pixels
    assert [sample.size for sample in samples] == [(size, size)] * 4
    assert all(np.asarray(sample).std() > 0 for sample in samples)
    assert "temperature 0.9" in text_of(browser, "generation-status")
    assert "top-k 5" in text_of(browser, "generation-status")
    captions = [element.text.strip() for element in css(browser, "#samples .caption-label, #samples figcaption")]
    assert captions == [] or set(captions) == {"coffee"}

    # The same controls through the model in this process give the same images: the page passed them all on.
    bundle = VQGenerationModel.from_pretrained(folders.space)
    processor = VQVAEImageProcessor.from_pretrained(folders.space)
    generator = torch.Generator().manual_seed(7)
    pixels = bundle.generate(4, class_labels=PHOTOS.index("coffee"), temperature=0.9, top_k=5, generator=generator)
    for sample, image in zip(samples, processor.postprocess(pixels)):
        assert np.array_equal(np.asarray(sample), enlarged(image, size // SIZE))


def test_malformed_uploads_show_an_error_and_the_page_lives_on(folders, apps, browser, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("a shopping list, not a picture\n")
    disguised = tmp_path / "notes.png"  # text under an image name: past the browser's file-type check
    disguised.write_text("a shopping list, not a picture\n")
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(folders.photo.read_bytes()[: folders.photo.stat().st_size // 2])
    huge = tmp_path / "huge.png"  # 49 megapixels of one grey: a 60 kB file
    Image.new("L", (7000, 7000), 128).save(huge)
    cases = [
        (notes, "Invalid file type"),  # refused by the page itself, before it reaches the app
        (disguised, "notes.png is not an image file this demo can read"),
        (truncated, "truncated.png is damaged or truncated"),
        (huge, "huge.png is 7000x7000 pixels (49 megapixels)"),
    ]
    for path, message in cases:
        open_page(browser, apps.space.url)
        upload(browser, path)
        css(browser, "#reconstruct-button")[0].click()
        wait_for(browser, lambda d: text_of(d, "reconstruction-status"), f"the answer to {path.name}")
        shown = [text_of(browser, "reconstruction-status"), *toasts(browser)]
        assert any(message in text for text in shown), (path.name, shown)
        status = css(browser, "#reconstruction-status")[0]
        assert status.is_displayed() and status.text.startswith("Error:"), status.text
        assert not css(browser, "#reconstruction img")
        screenshot(browser, tmp_path, f"space_app_error_{path.stem}_{path.suffix[1:]}")
    # The same page (no reload) still works: remove the huge image, upload a photo.
    css(browser, "#upload button[aria-label='Remove Image']")[0].click()
    upload(browser, folders.photo)
    css(browser, "#reconstruct-button")[0].click()
    wait_for(browser, lambda d: css(d, "#reconstruction img") and "PSNR" in text_of(d, "reconstruction-status"), "it")


def test_app_serves_a_hub_id_vqvae2_with_one_code_map_per_level(folders, apps, browser, tmp_path):
    reconstruct(browser, apps.hub, folders.photo)
    screenshot(browser, tmp_path, "space_app_hub_vqvae2")
    heading = " ".join(css(browser, "h1")[0].find_element("xpath", "..").text.split())
    assert heading.startswith("VQ-VAE-2 demo Serving org/vqvae2-photos"), heading
    assert not [button for button in css(browser, "button[role='tab']") if button.text.strip() == "Generation"]

    processor = VQVAEImageProcessor.from_pretrained(folders.vqvae2)
    with torch.no_grad():
        pixels = processor(Image.open(folders.photo), return_tensors="pt").pixel_values
        top, bottom = (level[0] for level in folders.vq2.encode(pixels))
    maps = images_in(browser, "#code-maps img")
    assert [picture.size for picture in maps] == [(256, 256), (256, 256)]
    assert_code_map_matches(maps[0], top)  # 4x4, top first
    assert_code_map_matches(maps[1], bottom)  # 8x8
    rebuilt = images_in(browser, "#reconstruction img")[0]
    assert rebuilt.size == (256, 256) and np.asarray(rebuilt).std() > 0


# ------------------------------------------------------------------------------------------------------ push
def record_hub(monkeypatch) -> tuple[list, list]:
    """The Hub is unreachable from here: `HfApi.create_repo` and `HfApi.create_commit` record their arguments
    instead (the boundary test_hub_packaging's RecordingHub stands in for); everything before them is the real code.
    Returns the lists they fill: `(repo_id, kwargs)` and `(repo_id, {path_in_repo: bytes}, kwargs)`."""
    from huggingface_hub import CommitOperationAdd, HfApi

    repos, commits = [], []

    def create_commit(self, repo_id, operations, **kwargs):
        assert all(isinstance(operation, CommitOperationAdd) for operation in operations)
        files = {operation.path_in_repo: Path(operation.path_or_fileobj).read_bytes() for operation in operations}
        commits.append((repo_id, files, kwargs))
        return SimpleNamespace(commit_url=f"https://huggingface.co/{repo_id}/commit/0123abc")

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: repos.append((repo_id, kwargs)))
    monkeypatch.setattr(HfApi, "create_commit", create_commit)
    return repos, commits


def files_of(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_push_space_creates_a_gradio_space_and_commits_the_folder_once(folders, monkeypatch):
    from hf_vqvae.space import push_space

    repos, commits = record_hub(monkeypatch)
    commit = push_space(folders.space, "me/photos-demo")
    assert repos == [("me/photos-demo", {"repo_type": "space", "space_sdk": "gradio", "private": None,
                                         "exist_ok": True})]  # fmt: skip
    ((repo_id, sent, options),) = commits
    assert repo_id == "me/photos-demo" and options["repo_type"] == "space"
    assert sent == files_of(folders.space)
    assert {"README.md", "app.py", "requirements.txt", "model.safetensors"} <= set(sent)
    assert commit.commit_url.endswith("/commit/0123abc")
    with pytest.raises(FileNotFoundError, match="not a Space folder"):
        push_space(folders.generation, "me/photos-demo")


def test_push_to_hub_space_flag_pushes_the_model_and_its_space(folders, tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("push_to_hub", REPO / "scripts" / "push_to_hub.py")
    push = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(push)
    repos, commits = record_hub(monkeypatch)
    repo_dir = tmp_path / "generation"
    shutil.copytree(folders.generation, repo_dir)
    record = push.main([str(repo_dir), "--hub_model_id", "org/generation-photos", "--space"])
    space_dir = tmp_path / "generation-space"
    assert record["space_dir"] == str(space_dir) and record["space_id"] == "org/generation-photos-demo"
    assert [(repo_id, kwargs.get("repo_type"), kwargs.get("space_sdk")) for repo_id, kwargs in repos] == [
        ("org/generation-photos", "model", None),
        ("org/generation-photos-demo", "space", "gradio"),
    ]
    (_, model_files, _), (_, space_files, space_options) = commits
    assert model_files == files_of(repo_dir) and "app.py" in model_files
    assert space_files == files_of(space_dir) and space_options["repo_type"] == "space"
    assert space_files["model_card.md"] == model_files["README.md"]
    assert b"sdk: gradio" in space_files["README.md"] and b"org/generation-photos" in space_files["README.md"]
