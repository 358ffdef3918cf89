"""What the web demos of hf_vqvae share (the image, audio and video `app.py`): reading uploads with clear errors,
pictures of codes, the image Reconstruction tab, progress over a prior's sampling, and the command line.

Copied beside `app.py` into every Hub-ready folder and Space (`hf_vqvae.space.build.write_app`); like the apps, it
imports gradio, transformers, torch, numpy and Pillow only, never hf_vqvae.
"""

from __future__ import annotations

import argparse
import colorsys
import contextlib
import math
import os
import sys
import warnings
from pathlib import Path

# A demo talks to nobody but its visitors: no usage statistics, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageOps, UnidentifiedImageError  # noqa: E402
from transformers import pipeline  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
MODEL_ENV = "HF_VQVAE_MODEL"
# Uploads above this many pixels are refused before they are decoded (a 40 MP RGB image is 120 MB of pixels).
MAX_PIXELS = int(os.environ.get("HF_VQVAE_MAX_PIXELS", 40_000_000))
MAX_FILE_SIZE = "50mb"
# Pictures are shown at least this large, enlarged by whole factors without smoothing, so 16-pixel codes stay crisp.
DISPLAY_SIZE = 256
# Folders of example files the page may serve (pictures of the card; WAV examples of audio repos).
EXAMPLE_DIRS = ("images", "examples")


class InputError(ValueError):
    """An upload or a control value the demo cannot use; its message is shown in the page."""


def upload_path(upload: dict | str | None, what: str) -> Path:
    """The path of an upload (gradio's file record, or a path), or an `InputError` asking for one."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    if not path:
        raise InputError(f"Upload {what} first.")
    return Path(path)


def read_upload(upload: dict | str | None) -> Image.Image:
    """The uploaded file as a decoded PIL image, or an `InputError` naming what is wrong with it."""
    path = upload_path(upload, "an image")
    name = path.name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as error:
        raise InputError(f"{name} is too large to decode: {error}") from None
    except (UnidentifiedImageError, OSError):
        raise InputError(
            f"{name} is not an image file this demo can read. Upload a PNG, JPEG, WebP, BMP, GIF or TIFF image."
        ) from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); this demo takes images of "
            f"up to {MAX_PIXELS / 1e6:.0f} megapixels. Downscale it first."
        )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as error:
        raise InputError(f"{name} is damaged or truncated and cannot be decoded ({error}).") from None
    return ImageOps.exif_transpose(image)


def whole_number(value, name: str, low: int, high: int | None = None) -> int:
    """A control's value as an int in [low, high], or an `InputError` naming the control."""
    if value is None or not float(value).is_integer() or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InputError(f"{name} must be a whole number {bounds}, got {value!r}.")
    return int(value)


def positive_number(value, name: str) -> float:
    if value is None or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a number above 0, got {value!r}.")
    return float(value)


def as_pcm16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit PCM (what a page plays and its WAV download holds)."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)


def error_result(error: Exception, blanks: tuple) -> tuple:
    """What an action returns on bad input: its outputs blank, the message as a toast and in the status line."""
    gr.Warning(str(error))
    return (*blanks, f"**Error:** {error}")


# ------------------------------------------------------------------------------------------------ pictures
def enlarge(image: Image.Image, size: int = DISPLAY_SIZE) -> Image.Image:
    """`image` enlarged by the whole factor that brings its longer side to at least `size` (nearest neighbour)."""
    factor = max(1, math.ceil(size / max(image.size)))
    return image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)


def code_palette(num_codes: int) -> np.ndarray:
    """`(K, 3)` uint8 colours, one per codebook entry: hues spaced by the golden ratio, so that neighbouring code ids
    look different, and the same id always gets the same colour."""
    colours = []
    for index in range(num_codes):
        hue = (index * 0.6180339887) % 1.0
        saturation, value = 0.45 + 0.5 * ((index * 0.37) % 1.0), 0.6 + 0.4 * ((index * 0.71) % 1.0)
        colours.append(colorsys.hsv_to_rgb(hue, saturation, value))
    return (np.asarray(colours) * 255 + 0.5).astype(np.uint8)


def code_map_picture(codes: torch.Tensor, num_codes: int, size: int) -> Image.Image:
    """A code map `(h, w)` as a colour picture, each code a square, enlarged to at least `size` pixels."""
    picture = Image.fromarray(code_palette(num_codes)[codes.cpu().numpy()])
    return enlarge(picture, size)


def psnr_db(reconstruction: torch.Tensor, reference: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1]: `10 log10(2^2 / MSE)` (peak-to-peak range 2, as for [0, 1] images with 1)."""
    mse = float((reconstruction.double() - reference.double()).square().mean())
    return math.inf if mse == 0 else 10.0 * math.log10(4.0 / mse)


def level_names(num_levels: int) -> list[str]:
    if num_levels == 1:
        return ["codes"]
    if num_levels == 2:
        return ["top level", "bottom level"]
    return ["top level", *(f"level {index}" for index in range(1, num_levels - 1)), "bottom level"]


# ----------------------------------------------------------------------------------- image reconstruction
class ImageReconstruction:
    """The image pipelines of a model (`image-to-image`, `image-feature-extraction`, sharing one loaded model) and
    the Reconstruction tab: the input as the model sees it, its reconstruction, its code map(s), the PSNR."""

    def __init__(self, source: str, device: str) -> None:
        self.reconstructor = pipeline("image-to-image", model=source, trust_remote_code=True, device=device)
        # The other pipelines of the same file share the loaded model rather than loading it again.
        self.pipelines = sys.modules[type(self.reconstructor).__module__]
        self.shared = {"model": self.reconstructor.model, "image_processor": self.reconstructor.image_processor}
        self.model = self.reconstructor.model
        # Code maps where the model serves them (a two-stage bundle serves reconstruction and generation only).
        self.extractor = None
        if "image-feature-extraction" in (getattr(self.model.config, "custom_pipelines", None) or {}):
            self.extractor = self.pipelines.VQVAEFeatureExtractionPipeline(
                task="image-feature-extraction", **self.shared
            )
        vq_model = getattr(self.model, "vq_model", self.model)
        sizes = getattr(vq_model.config, "num_embeddings", None)  # one K for all levels, or one per level
        self.codebook_sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
        self.image_size = vq_model.config.image_size

    def reconstruct(self, upload: dict | None):
        """Upload -> (input as the model sees it, reconstruction, code maps, PSNR text, status text)."""
        try:
            image = read_upload(upload)
            try:
                pixel_values = self.reconstructor.image_processor(image, return_tensors="pt").pixel_values[0]
            except (ValueError, TypeError) as error:  # the processor names what it cannot convert
                raise InputError(f"this image cannot be processed: {error}") from None
        except InputError as error:
            return error_result(error, (None, None, [], ""))
        reconstruction = self.reconstructor(image, output_type="pt")
        codes = self.extractor(image, return_tensors=True)["codes"] if self.extractor else []
        codes = list(codes) if isinstance(codes, (list, tuple)) else [codes]
        psnr = psnr_db(reconstruction, pixel_values)
        seen, rebuilt = self.reconstructor.image_processor.postprocess(torch.stack([pixel_values, reconstruction]))
        size = max(DISPLAY_SIZE, self.image_size)
        maps = []
        for level, (name, level_codes) in enumerate(zip(level_names(len(codes)), codes)):
            k = self.codebook_sizes[min(level, len(self.codebook_sizes) - 1)]
            used = int(level_codes.unique().numel())
            caption = f"{name}: {level_codes.shape[0]}x{level_codes.shape[1]} codes, {used} of {k} entries used"
            maps.append((code_map_picture(level_codes, k, size), caption))
        status = (
            f"Reconstructed {image.width}x{image.height} input at {self.image_size}x{self.image_size}: "
            f"PSNR {psnr:.2f} dB."
        )
        return enlarge(seen, size), enlarge(rebuilt, size), maps, f"{psnr:.2f}", status

    def tab(self, examples: list[Path], upload_label: str = "Upload an image") -> None:
        """The Reconstruction tab's components and event, inside the page being built."""
        with gr.Row():
            upload = gr.Image(type="filepath", label=upload_label, sources=["upload", "clipboard"], elem_id="upload")
            seen = gr.Image(
                label="Input, as the model sees it", interactive=False, format="png", elem_id="model-input"
            )
            rebuilt = gr.Image(label="Reconstruction", interactive=False, format="png", elem_id="reconstruction")
        with gr.Row():
            button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
            psnr = gr.Textbox(label="PSNR (dB)", interactive=False, elem_id="psnr")
        status = gr.Markdown(elem_id="reconstruction-status")
        code_maps = gr.Gallery(
            label="Code maps (one colour per codebook entry)", columns=4, height="auto", object_fit="contain",
            format="png", interactive=False, elem_id="code-maps",
        )  # fmt: skip
        if examples:
            gr.Examples([[str(path)] for path in examples], inputs=[upload])
        # preprocess=False: the app gets the uploaded file's record undecoded (gradio still checks that it is an
        # upload), so that a file that is no image, a truncated or a huge one gets `read_upload`'s message rather
        # than a decoder's traceback.
        button.click(
            self.reconstruct, inputs=[upload], outputs=[seen, rebuilt, code_maps, psnr, status], preprocess=False
        )


# ---------------------------------------------------------------------------------------------- progress
def _code_embedding(prior) -> torch.nn.Module | None:
    try:
        return prior.get_input_embeddings()
    except (AttributeError, NotImplementedError):  # priors saved before they exposed it
        return getattr(prior, "embedding", None)


@contextlib.contextmanager
def sampling_progress(
    priors, progress: gr.Progress, repeats: int = 1, desc: str = "sampling codes", whole_maps: bool = False
):
    """Reports sampling progress in code positions. A prior samples one position per step and embeds the code
    sampled before it at each step, so a hook on each prior's code embedding (`get_input_embeddings`) counts the
    steps without touching the sampler. `repeats`: how many maps each prior samples (a video: one per frame).
    `whole_maps`: the priors predict each map in one forward (`generate(parallel=True)`), so progress counts maps."""
    priors = [prior for prior in priors if _code_embedding(prior) is not None]
    per_map = [
        1 if whole_maps else (prior.config.latent_height or 1) * (prior.config.latent_width or 1) for prior in priors
    ]
    total = repeats * sum(per_map)
    unit = "maps" if whole_maps else "positions"
    done = 0

    def step(*_) -> None:
        nonlocal done
        done += 1
        progress((min(done, total), total), desc=desc, unit=unit)

    handles = [_code_embedding(prior).register_forward_hook(step) for prior in priors]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def sampling_controls(max_temperature: float = 2.0, with_top_k: bool = True) -> tuple:
    """The controls every sampling page has, built where it is called: temperature, top-k (optional, else None)
    and seed, with the element ids the pages' actions and tests read."""
    temperature = gr.Slider(0.05, max_temperature, value=1.0, step=0.05, label="Temperature", elem_id="temperature")
    top_k = gr.Number(0, label="Top-k (0: all codes)", precision=0, minimum=0, elem_id="top-k") if with_top_k else None
    seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
    return temperature, top_k, seed


# ------------------------------------------------------------------------------------------ command line
def examples_in(source: str, pattern: str) -> list[Path]:
    """Example files shipped in the folder (`pattern` relative to it, under one of `EXAMPLE_DIRS`), when the demo
    serves the folder it sits in."""
    return sorted(APP_DIR.glob(pattern)) if source == str(APP_DIR) else []


def served_name(source: str) -> str:
    return "this folder's model" if source == str(APP_DIR) else f"`{source}`"


def resolve_model(cli_value: str | None) -> str:
    """The model to serve: `--model`, else $HF_VQVAE_MODEL, else the folder this file sits in."""
    source = cli_value or os.environ.get(MODEL_ENV)
    if source:
        return source
    if (APP_DIR / "config.json").exists():
        return str(APP_DIR)
    raise SystemExit(f"no model: {APP_DIR} holds no config.json; pass --model org/name (or set {MODEL_ENV})")


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"Hub id or folder of the model (default: ${MODEL_ENV}, else this folder)")
    parser.add_argument(
        "--host", default=None, help="address to listen on (default: 127.0.0.1, or $GRADIO_SERVER_NAME)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    args = parser.parse_args(argv)
    args.model = resolve_model(args.model)
    args.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    return args


def serve(description: str, make_demo, build_page, argv: list[str] | None = None) -> None:
    """An app's `main`: parses the command line, loads the model (`make_demo(source, device)`), builds the page
    (`build_page(demo)`) and serves it."""
    args = parse_args(description, argv)
    launch(build_page(make_demo(args.model, device=args.device)), args)


def launch(page: gr.Blocks, args: argparse.Namespace) -> None:
    """Serves the page on loopback (or --host), one request at a time, with the folder's example files."""
    # System fonts: the default theme would have every visitor's browser fetch its fonts from Google.
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    page.queue(default_concurrency_limit=1).launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        show_error=True,
        ssr_mode=False,
        max_file_size=MAX_FILE_SIZE,
        allowed_paths=[str(APP_DIR / folder) for folder in EXAMPLE_DIRS],
        theme=theme,
    )
