"""A web demo of an hf_vqvae model (VQ-VAE, VQ-VAE-2 or generation bundle), written by hf_vqvae into every
Hub-ready folder and Space it builds.

* **Reconstruction:** upload an image; see it as the model sees it, its reconstruction, its code map(s) as coloured
  pictures (one colour per codebook entry), and the PSNR.
* **Generation** (generation bundles): class, temperature, top-k and seed controls; a grid of samples.

It reads the model from the folder it sits in, or from a Hub id:

    python app.py                                  # the model in this folder
    python app.py --model org/name --port 7860     # a Hub repo (or any folder); HF_VQVAE_MODEL=org/name also works

Everything goes through the model's own `transformers` pipelines (`pipeline_vqvae.py`, loaded with
`trust_remote_code=True`), so this file needs only gradio, transformers, torch, numpy and Pillow: hf_vqvae itself
need not be installed, as on a Hugging Face Space.
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
from transformers import AutoConfig, pipeline  # noqa: E402

APP_DIR = Path(__file__).resolve().parent
MODEL_ENV = "HF_VQVAE_MODEL"
# Uploads above this many pixels are refused before they are decoded (a 40 MP RGB image is 120 MB of pixels).
MAX_PIXELS = int(os.environ.get("HF_VQVAE_MAX_PIXELS", 40_000_000))
MAX_FILE_SIZE = "50mb"
# Pictures are shown at least this large, enlarged by whole factors without smoothing, so 16-pixel codes stay crisp.
DISPLAY_SIZE = 256
MAX_IMAGES = 16
ANY_CLASS = "(cycle through the classes)"
GENERATION_TASK = "unconditional-image-generation"


class InputError(ValueError):
    """An upload or a control value the demo cannot use; its message is shown in the page."""


def read_upload(upload: dict | str | None) -> Image.Image:
    """The uploaded file (gradio's file record, or a path) as a decoded PIL image, or an `InputError` naming what is
    wrong with it."""
    path = upload.get("path") if isinstance(upload, dict) else upload
    if not path:
        raise InputError("Upload an image first.")
    name = Path(path).name
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


def resolve_model(cli_value: str | None) -> str:
    """The model to serve: `--model`, else $HF_VQVAE_MODEL, else the folder this file sits in."""
    source = cli_value or os.environ.get(MODEL_ENV)
    if source:
        return source
    if (APP_DIR / "config.json").exists():
        return str(APP_DIR)
    raise SystemExit(f"no model: {APP_DIR} holds no config.json; pass --model org/name (or set {MODEL_ENV})")


class VQDemo:
    """The model's pipelines and the two actions of the page."""

    def __init__(self, source: str, device: str | None = None) -> None:
        self.source = source
        config = AutoConfig.from_pretrained(source, trust_remote_code=True)
        tasks = set(getattr(config, "custom_pipelines", None) or {})
        if "image-to-image" not in tasks:
            raise SystemExit(
                f"{source} ({config.model_type}) serves no image pipeline: a prior alone makes code maps, not "
                "images. Run this demo on its generation bundle (VQ-VAE + priors) instead."
            )
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.reconstructor = pipeline("image-to-image", model=source, trust_remote_code=True, device=device)
        # The other pipelines of the same file share the loaded model rather than loading it again.
        pipelines = sys.modules[type(self.reconstructor).__module__]
        shared = {"model": self.reconstructor.model, "image_processor": self.reconstructor.image_processor}
        self.extractor = pipelines.VQVAEFeatureExtractionPipeline(task="image-feature-extraction", **shared)
        self.generator = None
        if GENERATION_TASK in tasks:
            self.generator = pipelines.VQGenerationPipeline(task=GENERATION_TASK, **shared)
        self.model = self.reconstructor.model
        vq_model = getattr(self.model, "vq_model", self.model)
        sizes = vq_model.config.num_embeddings  # one K for all levels, or one per level (VQ-VAE-2)
        self.codebook_sizes = list(sizes) if isinstance(sizes, (list, tuple)) else None
        self.num_embeddings = sizes
        self.image_size = vq_model.config.image_size
        id2label = getattr(self.model.config, "id2label", None) or {}
        self.num_classes = getattr(self.model.config, "num_classes", None)
        self.class_names = (
            [id2label.get(index, id2label.get(str(index), str(index))) for index in range(self.num_classes)]
            if self.num_classes
            else []
        )

    def _codebook_size(self, level: int) -> int:
        return self.codebook_sizes[level] if self.codebook_sizes else self.num_embeddings

    # ----------------------------------------------------------------------------------------- reconstruction
    def reconstruct(self, upload: dict | None):
        """Upload -> (input as the model sees it, reconstruction, code maps, PSNR text, status text)."""
        try:
            image = read_upload(upload)
        except InputError as error:
            gr.Warning(str(error))
            return None, None, [], "", f"**Error:** {error}"
        try:
            pixel_values = self.reconstructor.image_processor(image, return_tensors="pt").pixel_values[0]
        except (ValueError, TypeError) as error:  # the processor names what it cannot convert
            gr.Warning(f"This image cannot be processed: {error}")
            return None, None, [], "", f"**Error:** this image cannot be processed: {error}"
        reconstruction = self.reconstructor(image, output_type="pt")
        codes = self.extractor(image, return_tensors=True)["codes"]
        codes = list(codes) if isinstance(codes, (list, tuple)) else [codes]
        psnr = psnr_db(reconstruction, pixel_values)
        postprocess = self.reconstructor.image_processor.postprocess
        seen, rebuilt = postprocess(torch.stack([pixel_values, reconstruction]))
        size = max(DISPLAY_SIZE, self.image_size)
        maps = []
        for level, (name, level_codes) in enumerate(zip(level_names(len(codes)), codes)):
            k = self._codebook_size(level)
            used = int(level_codes.unique().numel())
            caption = f"{name}: {level_codes.shape[0]}x{level_codes.shape[1]} codes, {used} of {k} entries used"
            maps.append((code_map_picture(level_codes, k, size), caption))
        status = (
            f"Reconstructed {image.width}x{image.height} input at {self.image_size}x{self.image_size}: "
            f"PSNR {psnr:.2f} dB."
        )
        return enlarge(seen, size), enlarge(rebuilt, size), maps, f"{psnr:.2f}", status

    # --------------------------------------------------------------------------------------------- generation
    def generate(self, class_name, num_images, temperature, top_k, seed, progress=gr.Progress()):  # noqa: B008
        """Controls -> (grid of samples with captions, status text)."""
        try:
            num_images, temperature, top_k, seed, labels = self._generation_args(
                class_name, num_images, temperature, top_k, seed
            )
        except InputError as error:
            gr.Warning(str(error))
            return [], f"**Error:** {error}"
        progress(0, desc="sampling codes")
        with _sampling_progress(self.model, progress):
            images = self.generator(
                num_images=num_images, seed=seed, class_labels=labels, temperature=temperature, top_k=top_k
            )
        size = max(DISPLAY_SIZE // 2, self.image_size)
        captions = self._captions(labels, num_images)
        status = f"{num_images} sample(s), seed {seed}, temperature {temperature:g}, top-k {top_k or 'all'}."
        return [(enlarge(image, size), caption) for image, caption in zip(images, captions)], status

    def _generation_args(self, class_name, num_images, temperature, top_k, seed):
        def whole(value, name: str, low: int, high: int | None = None) -> int:
            if value is None or not float(value).is_integer() or value < low or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise InputError(f"{name} must be a whole number {bounds}, got {value!r}.")
            return int(value)

        num_images = whole(num_images, "The number of images", 1, MAX_IMAGES)
        if temperature is None or not math.isfinite(temperature) or temperature <= 0:
            raise InputError(f"The temperature must be a number above 0, got {temperature!r}.")
        top_k = whole(top_k, "Top-k", 0) or None
        seed = whole(seed, "The seed", 0, 2**63 - 1)
        labels = None
        if self.num_classes and class_name not in (None, "", ANY_CLASS):
            if class_name not in self.class_names:
                raise InputError(f"Unknown class {class_name!r}; this model knows {', '.join(self.class_names)}.")
            labels = self.class_names.index(class_name)
        return num_images, float(temperature), top_k, seed, labels

    def _captions(self, label: int | None, num_images: int) -> list[str]:
        if not self.num_classes:
            return [f"sample {index + 1}" for index in range(num_images)]
        # Without a class the bundle cycles through its classes (VQGenerationModel.generate).
        ids = [label] * num_images if label is not None else [index % self.num_classes for index in range(num_images)]
        return [self.class_names[index] for index in ids]


def _code_embedding(prior) -> torch.nn.Module | None:
    try:
        return prior.get_input_embeddings()
    except (AttributeError, NotImplementedError):  # priors saved before they exposed it
        return getattr(prior, "embedding", None)


@contextlib.contextmanager
def _sampling_progress(model, progress: gr.Progress):
    """Reports sampling progress in code positions. A prior samples one position per step and embeds the code
    sampled before it at each step, so a hook on each prior's code embedding (`get_input_embeddings`) counts the
    steps without touching the sampler."""
    priors = [prior for prior in getattr(model, "priors", []) if _code_embedding(prior) is not None]
    total = sum((prior.config.latent_height or 1) * (prior.config.latent_width or 1) for prior in priors)
    done = 0

    def step(*_) -> None:
        nonlocal done
        done += 1
        progress((min(done, total), total), desc="sampling codes", unit="positions")

    handles = [_code_embedding(prior).register_forward_hook(step) for prior in priors]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def build_demo(demo: VQDemo) -> gr.Blocks:
    """The page: a Reconstruction tab, and a Generation tab for generation bundles."""
    kind = {"vqvae": "VQ-VAE", "vqvae2": "VQ-VAE-2", "vq_generation": "VQ-VAE generation bundle"}
    title = f"{kind.get(demo.model.config.model_type, demo.model.config.model_type)} demo"
    name = "this folder's model" if demo.source == str(APP_DIR) else f"`{demo.source}`"
    examples = sorted((APP_DIR / "images").glob("example_input.*")) if demo.source == str(APP_DIR) else []
    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}\nServing {name}, {demo.image_size}x{demo.image_size} pixels, with hf_vqvae's pipelines."
        )
        with gr.Tabs():
            with gr.Tab("Reconstruction", id="reconstruction"):
                with gr.Row():
                    upload = gr.Image(
                        type="filepath", label="Upload an image", sources=["upload", "clipboard"], elem_id="upload"
                    )
                    seen = gr.Image(
                        label="Input, as the model sees it", interactive=False, format="png", elem_id="model-input"
                    )
                    rebuilt = gr.Image(
                        label="Reconstruction", interactive=False, format="png", elem_id="reconstruction"
                    )
                with gr.Row():
                    reconstruct_button = gr.Button("Reconstruct", variant="primary", elem_id="reconstruct-button")
                    psnr = gr.Textbox(label="PSNR (dB)", interactive=False, elem_id="psnr")
                status = gr.Markdown(elem_id="reconstruction-status")
                code_maps = gr.Gallery(
                    label="Code maps (one colour per codebook entry)",
                    columns=4,
                    height="auto",
                    object_fit="contain",
                    format="png",
                    interactive=False,
                    elem_id="code-maps",
                )
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[upload])
                # preprocess=False: the app gets the uploaded file's record undecoded (gradio still checks that it
                # is an upload), so that a file that is no image, a truncated or a huge one gets `read_upload`'s
                # message rather than a decoder's traceback.
                reconstruct_button.click(
                    demo.reconstruct,
                    inputs=[upload],
                    outputs=[seen, rebuilt, code_maps, psnr, status],
                    preprocess=False,
                )
            if demo.generator is not None:
                with gr.Tab("Generation", id="generation"):
                    with gr.Row():
                        class_name = gr.Dropdown(
                            [ANY_CLASS, *demo.class_names], value=ANY_CLASS, label="Class", elem_id="class",
                            visible=bool(demo.class_names),
                        )  # fmt: skip
                        num_images = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Images", elem_id="num-images")
                        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="Temperature",
                                                elem_id="temperature")  # fmt: skip
                        top_k = gr.Number(0, label="Top-k (0: all codes)", precision=0, minimum=0, elem_id="top-k")
                        seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
                    generate_button = gr.Button("Generate", variant="primary", elem_id="generate-button")
                    generation_status = gr.Markdown(elem_id="generation-status")
                    samples = gr.Gallery(
                        label="Samples", columns=4, format="png", interactive=False, elem_id="samples"
                    )
                    generate_button.click(
                        demo.generate,
                        inputs=[class_name, num_images, temperature, top_k, seed],
                        outputs=[samples, generation_status],
                    )
    return page.queue(default_concurrency_limit=1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help=f"Hub id or folder of the model (default: ${MODEL_ENV}, else this folder)")
    parser.add_argument(
        "--host", default=None, help="address to listen on (default: 127.0.0.1, or $GRADIO_SERVER_NAME)"
    )
    parser.add_argument("--port", type=int, default=None, help="port (default: 7860, or $GRADIO_SERVER_PORT)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    args = parser.parse_args(argv)
    demo = VQDemo(resolve_model(args.model), device=args.device)
    # System fonts: the default theme would have every visitor's browser fetch its fonts from Google.
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"]
    )
    build_demo(demo).launch(
        server_name=args.host,
        server_port=args.port,
        share=False,
        show_error=True,
        ssr_mode=False,
        max_file_size=MAX_FILE_SIZE,
        allowed_paths=[str(APP_DIR / "images")],
        theme=theme,
    )


if __name__ == "__main__":
    main()
