"""The audio and environment web demos (issue 17): the `app.py` that the audio VQ-VAE and the action-conditioned
video model folders carry, used as a person uses it, in a real browser.

What is real here:
* The folders are written by the package's own code: the video folder by `scripts/run_demo_env.py`'s
  `save_video_repo` (model, processor, pipelines, example frame, app, card), the audio folder by the same calls
  `scripts/run_demo_audio.py` makes (model, feature extractor, pipelines, WAV example, `write_app`, card). The
  models are tiny and untrained (random weights): the page is tested against what the model computes directly.
* Each demo runs as `python app.py --port P --host 127.0.0.1` from its folder in a subprocess where
  `import hf_vqvae` fails (as on a Space). Debian's headless Chromium, through selenium, uploads a real recording
  (a Czech line of Fish Fillets' dialogue, Debian's fillets-ng-data-cs, converted to a 22.05 kHz WAV) and a real
  photo (scikit-image's astronaut), presses the buttons, and the test reads back the audio, GIF and pictures the page
  serves.
* Malformed uploads (text under a .wav or .png name, a WAV with no samples, an unknown action) must show a visible
  error.

Screenshots go to the test's tmp_path and `outputs/test-artifacts/`. Skipped only where no Chromium/chromedriver
is found, and the audio test where the Debian speech packages are missing (`make speech-deps`).
"""

from __future__ import annotations

import importlib.util
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile
import torch
from browser_helpers import (
    CHROMEDRIVER,
    CHROMIUM,
    App,
    app_env,
    browser_session,
    css,
    fetch,
    images_in,
    open_page,
    running,
    screenshot,
    text_of,
    texts,
    toasts,
    torch_threads,
    upload,
    wait_for,
)
from conftest import REPO
from PIL import Image
from skimage import data as skimage_data
from transformers import pipeline

from hf_vqvae import (
    AudioVQVAEConfig,
    AudioVQVAEModel,
    PixelSNAILConfig,
    PixelSNAILModel,
    VQGenerationModel,
    VQTwoStageModel,
    VQVAEAudioFeatureExtractor,
    VQVAEConfig,
    VQVAEImageProcessor,
    VQVAEModel,
    VQVideoModel,
)
from hf_vqvae.data.speech import FILLETS_SOUND_ROOT
from hf_vqvae.env.media import gif_frame_count
from hf_vqvae.hub.audio_card import write_audio_card
from hf_vqvae.hub.pipelines import REPO_TASKS, add_pipelines, repo_tasks
from hf_vqvae.space import DEMO_APPS, build_space, demo_app, pinned_requirements, write_app

pytestmark = pytest.mark.slow

SPEAKERS = ["Alice", "Bob", "Carol"]
ACTIONS = ["TURN_LEFT", "TURN_RIGHT", "MOVE_FORWARD"]
FRAME = 16
MAX_SECONDS = 0.25  # the audio app cuts clips to this (HF_VQVAE_MAX_SECONDS): 4000 samples to decode
# What shows an uploaded clip: gradio's waveform player, or the browser's own player where it cannot draw one.
AUDIO_PREVIEW = "audio, .waveform-container"
SPEECH = sorted(FILLETS_SOUND_ROOT.glob("*/cs/*.ogg")) if FILLETS_SOUND_ROOT.is_dir() else []


@pytest.fixture(scope="module", autouse=True)
def _single_thread():
    with torch_threads(1):  # as the app processes run
        yield


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_audio_model() -> AudioVQVAEModel:
    torch.manual_seed(0)
    config = AudioVQVAEConfig(
        hidden_channels=16, residual_channels=8, num_residual_blocks=1, num_embeddings=32, embedding_dim=8,
        num_speakers=len(SPEAKERS), speaker_names=SPEAKERS, speaker_embedding_dim=8, condition_channels=16,
        condition_residual_blocks=1, wavenet_residual_channels=16, wavenet_gate_channels=16,
        wavenet_skip_channels=16, wavenet_num_layers=4, wavenet_dilation_cycle=4, segment_samples=1024,
    )  # fmt: skip
    return AudioVQVAEModel(config).eval()


def tiny_two_stage_model() -> VQTwoStageModel:
    torch.manual_seed(1)
    small = {"hidden_channels": 16, "residual_channels": 8, "embedding_dim": 8, "kmeans_init": False}
    stage1 = VQVAEModel(VQVAEConfig(image_size=FRAME, num_embeddings=32, **small))  # 4x4 codes
    stage2 = VQVAEModel(VQVAEConfig(image_size=4, downsample_factor=2, in_channels=8, input_num_embeddings=32,
                                    num_embeddings=16, **small))  # fmt: skip
    prior = PixelSNAILModel(PixelSNAILConfig(num_embeddings=16, latent_height=2, latent_width=2, hidden_channels=16,
                                             num_stages=1, num_residual_blocks=1, num_attention_heads=2,
                                             kernel_size=3))  # fmt: skip
    return VQTwoStageModel.from_parts(stage1, stage2, prior).eval()


def tiny_video_model() -> VQVideoModel:
    torch.manual_seed(0)
    vq = VQVAEModel(VQVAEConfig(image_size=FRAME, num_embeddings=32, hidden_channels=16, residual_channels=8,
                                embedding_dim=8, kmeans_init=False))  # fmt: skip
    dynamics = PixelSNAILModel(
        PixelSNAILConfig(
            num_embeddings=32, latent_height=4, latent_width=4, hidden_channels=16, num_stages=1,
            num_residual_blocks=1, num_attention_heads=2, kernel_size=3, dropout=0.0, condition_num_embeddings=32,
            condition_height=4, condition_width=4, num_classes=len(ACTIONS),
        )
    )  # fmt: skip
    return VQVideoModel.from_parts(vq, dynamics, ACTIONS)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("space_demos")
    photo = root / "astronaut.png"
    Image.fromarray(skimage_data.astronaut()).save(photo)

    # The audio folder, as run_demo_audio.py writes it.
    audio_model = tiny_audio_model()
    audio = root / "audio"
    audio_model.save_pretrained(audio)
    extractor = VQVAEAudioFeatureExtractor(
        sampling_rate=16000, pad_to_multiple_of=audio_model.config.downsample_factor
    )
    extractor.save_pretrained(audio)
    add_pipelines(audio, REPO_TASKS["audio_vqvae"])
    speech = None
    if SPEECH:
        samples, rate = soundfile.read(SPEECH[0], dtype="float32")
        speech = root / "speech.wav"  # a real recording, as a person's WAV: 22.05 kHz, 16-bit
        soundfile.write(speech, samples[: rate // 2], rate, subtype="PCM_16")
        (audio / "examples").mkdir()
        soundfile.write(audio / "examples" / "fish_original.wav", samples[:rate], rate, subtype="PCM_16")
    write_app(audio)
    write_audio_card(
        audio, repo_id="org/audio-demo", metrics=[("code rate", f"{audio_model.config.latent_rate:.0f} codes/s")],
        speakers=[{"id": i, "name": name, "description": "test voice", "licence": "CC0-1.0"}
                  for i, name in enumerate(SPEAKERS)],
        examples=[], training="untrained (a UI test)", reproduce="pytest tests/test_space_demos.py",
    )  # fmt: skip

    # A speech generation bundle's folder: the audio model and a speaker-conditional prior over its codes (one
    # second of 16 kHz speech is 250 codes; 16 codes here, 1024 samples), as hub.audio_repos writes it.
    torch.manual_seed(2)
    speech_prior = PixelSNAILModel(
        PixelSNAILConfig(num_embeddings=32, spatial_dims=1, latent_length=16, hidden_channels=16, num_stages=1,
                         num_residual_blocks=1, num_attention_heads=2, kernel_size=3, num_classes=len(SPEAKERS))
    )  # fmt: skip
    speech_bundle = VQGenerationModel.from_parts(audio_model, [speech_prior], id2label=dict(enumerate(SPEAKERS)))
    speech_folder = root / "speech-bundle"
    speech_bundle.save_pretrained(speech_folder)
    extractor.save_pretrained(speech_folder)
    add_pipelines(speech_folder, repo_tasks(speech_bundle.config))
    write_app(speech_folder)

    # The video folder, written by run_demo_env.py's own function.
    video_model = tiny_video_model()
    env_script = load_script("run_demo_env")
    video = root / "video"
    gif = root / "rollout.gif"
    Image.new("RGB", (FRAME, FRAME)).save(gif)
    example = np.asarray(Image.open(photo).convert("RGB").resize((64, 64)))
    horizon = [float("nan")] * 2
    metrics = {
        "dynamics_bits_per_code": float("nan"),
        "prediction": {"horizon": 2, "num_rollouts": 0, "psnr_per_step": horizon, "copy_last_psnr_per_step": horizon,
                       "copy_last_codes_psnr_per_step": horizon, "reconstruction_psnr_per_step": horizon},
    }  # fmt: skip
    data_info = {"scenario": "none (a UI test)", "splits": {"train": 0}}
    env_script.save_video_repo(video_model, metrics, data_info, video, "org/video-demo", gif, "pytest", example)
    # The two-stage bundle's folder, by the same script.
    two_stage_model = tiny_two_stage_model()
    two_stage = root / "two-stage"
    nan = float("nan")
    metrics = {
        "stage1": {"psnr": nan, "ssim": nan},
        "stage2": {"code_accuracy": nan, "psnr": nan, "psnr_vs_stage1_reconstruction": nan},
        "bits": {"uniform_bits_per_frame": nan, "prior_bits_per_frame": nan},
    }
    png = root / "samples.png"
    Image.new("RGB", (FRAME, FRAME)).save(png)
    env_script.save_two_stage_repo(
        two_stage_model, metrics, data_info, two_stage, "org/two-stage-demo", png, "pytest", example
    )
    return SimpleNamespace(
        two_stage=two_stage, two_stage_model=two_stage_model,
        root=root, photo=photo, audio=audio, video=video, speech=speech, audio_model=audio_model,
        video_model=video_model, extractor=extractor, speech_bundle=speech_folder,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ the folders
def test_each_folder_carries_its_own_demo(folders, tmp_path):
    for folder, model_type, template in ((folders.audio, "audio_vqvae", "audio_app.py"),
                                         (folders.video, "vq_video", "video_app.py"),
                                         (folders.two_stage, "vq_two_stage", "app.py")):  # fmt: skip
        app = demo_app(folder)
        assert app is DEMO_APPS[model_type] and app.template == template
        assert (folder / "app.py").read_bytes() == app.template_path().read_bytes()
        assert (folder / "demo_common.py").read_bytes() == app.template_path().with_name("demo_common.py").read_bytes()
        assert (folder / "requirements.txt").read_text().split() == pinned_requirements(app)
        card = (folder / "README.md").read_text()
        assert "python app.py" in card and "--space" in card and "requirements.txt" in card
    pins = dict(line.split("==") for line in (folders.audio / "requirements.txt").read_text().split())
    assert pins["soundfile"] == soundfile.__version__  # the audio app reads uploads with it
    assert (folders.video / "images" / "example_frame.png").exists()

    from huggingface_hub import SpaceCard

    space = build_space(folders.audio, tmp_path / "audio-space", model_id="org/audio-demo")
    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.app_file == "app.py" and card.data.title == "Audio VQ-VAE demo"
    assert "speaker" in (space / "README.md").read_text()
    assert (space / "app.py").read_bytes() == (folders.audio / "app.py").read_bytes()
    assert (space / "model_card.md").read_text() == (folders.audio / "README.md").read_text()


@pytest.fixture(scope="module")
def apps(folders, tmp_path_factory):
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no Chromium / chromedriver (Debian: apt-get install chromium chromium-driver; make data-deps)")
    logs = tmp_path_factory.mktemp("demo_logs")
    env = app_env(logs, logs / "hf_home", HF_VQVAE_MAX_SECONDS=str(MAX_SECONDS))
    with running(
        App(folders.audio / "app.py", folders.audio, logs / "audio.log", env),
        App(folders.video / "app.py", folders.video, logs / "video.log", env),
        App(folders.two_stage / "app.py", folders.two_stage, logs / "two_stage.log", env),
        App(folders.speech_bundle / "app.py", folders.speech_bundle, logs / "speech.log", env),
    ) as (audio, video, two_stage, speech):
        yield SimpleNamespace(audio=audio, video=video, two_stage=two_stage, speech=speech)


@pytest.fixture(scope="module")
def browser(apps, tmp_path_factory):
    with browser_session(tmp_path_factory.mktemp("chromium_profile")) as driver:
        yield driver


def choose(driver, element_id: str, option: str) -> None:
    css(driver, f"#{element_id} input")[0].click()
    wait_for(driver, lambda d: [o for o in css(d, "li[role='option']") if o.text.strip() == option], "the options")
    [element for element in css(driver, "li[role='option']") if element.text.strip() == option][0].click()


def type_into(driver, selector: str, value: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = css(driver, selector)[0]
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(value, Keys.TAB)


def wav_in(driver, element_id: str) -> tuple[np.ndarray, int]:
    """The WAV an audio output serves: int16 samples and rate."""
    sources = [e.get_attribute("src") or e.get_attribute("href") for e in css(driver, f"#{element_id} audio, "
               f"#{element_id} a[download]")]  # fmt: skip
    url = next(source for source in sources if source and source.startswith("http"))
    samples, rate = soundfile.read(io.BytesIO(fetch(url)), dtype="int16")
    return samples, rate


def assert_cells(picture: Image.Image, codes: list[int], per_row: int, cell: int) -> None:
    """The picture shows the codes: `per_row` flat squares a row, one colour per code id, white after the end."""
    array = np.asarray(picture)
    rows = -(-len(codes) // per_row)
    assert array.shape[:2] == (rows * cell, per_row * cell)
    colours = {}
    for index in range(rows * per_row):
        row, col = divmod(index, per_row)
        square = array[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell].reshape(-1, 3)
        assert (square == square[0]).all()
        if index >= len(codes):
            assert tuple(square[0]) == (255, 255, 255)
        else:
            colours.setdefault(codes[index], set()).add(tuple(square[0]))
    assert all(len(shades) == 1 for shades in colours.values())
    assert len({next(iter(shades)) for shades in colours.values()}) == len(colours)


# ------------------------------------------------------------------------------------------------ audio
@pytest.mark.skipif(not SPEECH, reason="the Debian speech packages are not installed (make speech-deps)")
def test_audio_demo_converts_a_real_recording_in_a_browser(folders, apps, browser, tmp_path):
    open_page(browser, apps.audio.url)
    upload(browser, folders.speech, preview=AUDIO_PREVIEW)
    choose(browser, "speaker", "Bob")
    type_into(browser, "#seed input[type='number']", "3")
    css(browser, "#convert-button")[0].click()
    progress = set()  # what the page shows while the WaveNet samples (about 4000 samples: seconds on one thread)

    def decoded(driver) -> bool:
        progress.update(texts(driver, ".progress-text, .meta-text"))
        return "as Bob" in text_of(driver, "audio-status") and bool(css(driver, "#codes img"))

    wait_for(browser, decoded, "the decoded audio")
    assert any("WaveNet" in text or "sample" in text for text in progress), progress
    screenshot(browser, tmp_path, "space_demo_audio")
    status = text_of(browser, "audio-status")

    # What the model computes from the same clip: the app's cut to MAX_SECONDS, resampled to 16 kHz, padded.
    samples, rate = soundfile.read(folders.speech, dtype="float32")
    assert rate == 22050
    clip = samples[: int(MAX_SECONDS * rate)]
    inputs = folders.extractor(clip, sampling_rate=rate, return_tensors="pt").input_values
    model = folders.audio_model
    codes = model.encode(inputs)[0]
    expected = model.decode(codes[None], speaker_ids=SPEAKERS.index("Bob"), generator=torch.Generator().manual_seed(3))
    expected = np.round(expected[0].clamp(-1, 1).numpy() * 32767).astype(np.int16)

    decoded, decoded_rate = wav_in(browser, "decoded")
    assert decoded_rate == 16000 and decoded.shape == expected.shape == (inputs.shape[1],)
    assert np.array_equal(decoded, expected)
    heard, heard_rate = wav_in(browser, "heard")
    assert heard_rate == 16000 and np.abs(heard.astype(int) - np.round(inputs[0].numpy() * 32767)).max() <= 1
    assert f"first {MAX_SECONDS:g} s" in status and f"{len(codes)} codes" in status

    (picture,) = images_in(browser, "#codes img")
    assert_cells(picture, codes.tolist(), per_row=50, cell=12)


def test_audio_demo_shows_errors_for_bad_uploads(folders, apps, browser, tmp_path):
    disguised = tmp_path / "notes.wav"
    disguised.write_text("a shopping list, not a recording\n")
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    for path, message in ((disguised, "notes.wav is not an audio file"), (empty, "empty.wav holds no samples")):
        open_page(browser, apps.audio.url)
        upload(browser, path, preview=AUDIO_PREVIEW)
        css(browser, "#convert-button")[0].click()
        wait_for(browser, lambda d: text_of(d, "audio-status") or toasts(d), f"the answer to {path.name}")
        shown = [text_of(browser, "audio-status"), *toasts(browser)]
        assert any(message in text for text in shown), (path.name, shown)
        screenshot(browser, tmp_path, f"space_demo_audio_error_{path.stem}")


def test_speech_generation_demo_speaks_in_the_chosen_voice(folders, apps, browser, tmp_path):
    assert demo_app(folders.speech_bundle) is DEMO_APPS["vq_generation_audio"]
    browser.get(apps.speech.url)  # no upload on this page: it speaks from a speaker and a seed
    wait_for(browser, lambda d: css(d, "#speak-button"), "the page")
    choose(browser, "speaker", "Carol")
    type_into(browser, "#seed input[type='number']", "4")
    css(browser, "#speak-button")[0].click()
    wait_for(browser, lambda d: "as Carol" in text_of(d, "speech-status") and css(d, "#clip audio"), "the clip")
    screenshot(browser, tmp_path, "space_demo_speech")
    # What the package's pipeline speaks for the same speaker and seed, in this process, from the saved bundle.
    bundle = VQGenerationModel.from_pretrained(folders.speech_bundle).eval()
    (expected,) = pipeline("unconditional-audio-generation", model=bundle)(1, speaker="Carol", seed=4)
    clip, rate = wav_in(browser, "clip")
    assert rate == expected["sampling_rate"] == 16000 and clip.shape == expected["audio"].shape == (1024,)
    assert np.array_equal(clip, np.round(np.clip(expected["audio"], -1, 1) * 32767).astype(np.int16))
    assert "seed 4" in text_of(browser, "speech-status")
    # A seed that is not a whole number gets a visible error.
    type_into(browser, "#seed input[type='number']", "-1")
    css(browser, "#speak-button")[0].click()
    wait_for(browser, lambda d: "Error" in text_of(d, "speech-status") or toasts(d), "the error")
    assert any("seed" in text.lower() for text in [text_of(browser, "speech-status"), *toasts(browser)])


# ------------------------------------------------------------------------------------------------ video
def test_video_demo_predicts_frames_from_a_photo_and_actions(folders, apps, browser, tmp_path):
    open_page(browser, apps.video.url, field="frame")
    upload(browser, folders.photo, field="frame")
    type_into(browser, "#actions textarea, #actions input", "TURN_LEFT x2")
    css(browser, "#action-2")[0].click()  # appends MOVE_FORWARD
    field = css(browser, "#actions textarea, #actions input")[0]
    wait_for(browser, lambda d: "MOVE_FORWARD" in field.get_attribute("value"), "the action button")
    type_into(browser, "#seed input[type='number']", "5")
    css(browser, "#predict-button")[0].click()
    wait_for(browser, lambda d: "seed 5" in text_of(d, "prediction-status") and len(css(d, "#frames img")) == 3,
             "the predicted frames")  # fmt: skip
    screenshot(browser, tmp_path, "space_demo_video")

    actions = ["TURN_LEFT", "TURN_LEFT", "MOVE_FORWARD"]
    first = Image.open(folders.photo).convert("RGB").resize((FRAME, FRAME), Image.Resampling.BILINEAR)
    context = torch.from_numpy(np.asarray(first).copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)
    frames = folders.video_model.generate(context[None], actions, generator=torch.Generator().manual_seed(5))[0]
    expected = frames.clamp(-1, 1).add(1).mul(127.5).round().byte().permute(0, 2, 3, 1).numpy()
    factor = 256 // FRAME
    shown = images_in(browser, "#frames img")
    assert [image.size for image in shown] == [(FRAME * factor, FRAME * factor)] * 3
    for image, frame in zip(shown, expected):
        big = frame.repeat(factor, axis=0).repeat(factor, axis=1)
        assert np.array_equal(np.asarray(image), big)
    assert all(np.asarray(image).std() > 0 for image in shown)

    gif_url = css(browser, "#rollout img")[0].get_attribute("src")
    gif = fetch(gif_url)
    assert gif[:6] == b"GIF89a" and gif_frame_count(gif) == len(actions) + 1  # the first frame, then one per action
    assert Image.open(io.BytesIO(gif)).size == (FRAME * factor, FRAME * factor)


def test_video_demo_reconstructs_a_frame_and_refuses_bad_input(folders, apps, browser, tmp_path):
    open_page(browser, apps.video.url, field="frame")
    disguised = tmp_path / "notes.png"
    disguised.write_text("a shopping list, not a picture\n")
    upload(browser, disguised, field="frame")
    css(browser, "#predict-button")[0].click()
    wait_for(browser, lambda d: "Error" in text_of(d, "prediction-status"), "the error")
    assert "notes.png is not an image file" in text_of(browser, "prediction-status")
    css(browser, "#frame button[aria-label='Remove Image']")[0].click()
    upload(browser, folders.photo, field="frame")
    type_into(browser, "#actions textarea, #actions input", "JUMP x2")
    css(browser, "#predict-button")[0].click()
    wait_for(browser, lambda d: "Unknown action" in text_of(d, "prediction-status"), "the unknown action")
    screenshot(browser, tmp_path, "space_demo_video_error")

    (tab,) = [button for button in css(browser, "button[role='tab']") if button.text.strip() == "Reconstruction"]
    tab.click()
    wait_for(browser, lambda d: css(d, "#upload input[type=file]"), "the Reconstruction tab")

    # The example frame saved in the folder (images/example_frame.png), taken with one click.
    def example_frame(driver) -> list:
        return [
            e for e in css(driver, "img") if "example_frame" in (e.get_attribute("src") or "") and e.is_displayed()
        ]

    example = wait_for(browser, example_frame, "the example frame")
    example[0].click()
    wait_for(browser, lambda d: css(d, "#upload img"), "the example in the upload field")
    css(browser, "#reconstruct-button")[0].click()
    wait_for(browser, lambda d: "PSNR" in text_of(d, "reconstruction-status") and css(d, "#code-maps img"), "it")
    assert "64x64 input" in text_of(browser, "reconstruction-status")
    (code_map,) = images_in(browser, "#code-maps img")
    first = Image.open(folders.video / "images" / "example_frame.png").convert("RGB")
    pixels = VQVAEImageProcessor.from_pretrained(folders.video)(first, return_tensors="pt").pixel_values
    codes = folders.video_model.encode(pixels)[0]
    assert code_map.size == (256, 256)
    assert_cells(code_map, codes.flatten().tolist(), per_row=codes.shape[1], cell=256 // codes.shape[1])
    screenshot(browser, tmp_path, "space_demo_video_reconstruction")
    assert json.loads((folders.video / "config.json").read_text())["model_type"] == "vq_video"


# -------------------------------------------------------------------------------------------- two-stage
def test_two_stage_demo_reconstructs_the_example_and_samples(folders, apps, browser, tmp_path):
    open_page(browser, apps.two_stage.url)
    heading = " ".join(css(browser, "h1")[0].find_element("xpath", "..").text.split())
    assert heading.startswith("Two-stage VQ-VAE bundle demo"), heading
    [e for e in css(browser, "img") if "example_input" in (e.get_attribute("src") or "") and e.is_displayed()][
        0
    ].click()
    wait_for(browser, lambda d: css(d, "#upload img"), "the example in the upload field")
    css(browser, "#reconstruct-button")[0].click()
    wait_for(browser, lambda d: "PSNR" in text_of(d, "reconstruction-status"), "the reconstruction")
    model = folders.two_stage_model
    processor = VQVAEImageProcessor.from_pretrained(folders.two_stage)
    pixels = processor(
        Image.open(folders.two_stage / "images" / "example_input.png"), return_tensors="pt"
    ).pixel_values
    with torch.no_grad():
        reconstruction = model(pixels).reconstruction  # through both stages and back
    factor = 256 // FRAME
    rebuilt = np.asarray(images_in(browser, "#reconstruction img")[0]).astype(int)
    expected = np.asarray(processor.postprocess(reconstruction)[0]).repeat(factor, 0).repeat(factor, 1).astype(int)
    assert rebuilt.shape == expected.shape and np.abs(rebuilt - expected).max() <= 1

    (tab,) = [button for button in css(browser, "button[role='tab']") if button.text.strip() == "Generation"]
    tab.click()
    wait_for(browser, lambda d: css(d, "#generate-button") and css(d, "#generate-button")[0].is_displayed(), "tab")
    type_into(browser, "#num-images input[type='number']", "3")
    type_into(browser, "#seed input[type='number']", "4")
    css(browser, "#generate-button")[0].click()
    wait_for(browser, lambda d: len(css(d, "#samples img")) == 3 and "seed 4" in text_of(d, "generation-status"), "it")
    screenshot(browser, tmp_path, "space_demo_two_stage")
    samples = images_in(browser, "#samples img")
    pixels = model.generate(3, generator=torch.Generator().manual_seed(4))
    size = 128 // FRAME  # samples are shown at least 128 pixels wide
    for sample, image in zip(samples, processor.postprocess(pixels)):
        assert np.array_equal(np.asarray(sample), np.asarray(image).repeat(size, 0).repeat(size, 1))
