"""A web demo of an hf_vqvae image model (VQ-VAE, VQ-VAE-2 or generation bundle), written by hf_vqvae into every
Hub-ready folder and Space it builds.

* **Reconstruction:** upload an image; see it as the model sees it, its reconstruction, its code map(s) as coloured
  pictures (one colour per codebook entry), and the PSNR.
* **Generation** (generation bundles): class, temperature, top-k and seed controls; a grid of samples.

It reads the model from the folder it sits in, or from a Hub id:

    python app.py                                  # the model in this folder
    python app.py --model org/name --port 7860     # a Hub repo (or any folder); HF_VQVAE_MODEL=org/name also works

Everything goes through the model's own `transformers` pipelines (`pipeline_vqvae.py`, loaded with
`trust_remote_code=True`), so this file and `demo_common.py` beside it need only gradio, transformers, torch, numpy
and Pillow: hf_vqvae itself need not be installed, as on a Hugging Face Space.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The shared parts sit beside this file (in a model folder, a Space, or the hf_vqvae package).
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
from demo_common import (  # noqa: E402
    DISPLAY_SIZE,
    ImageReconstruction,
    InputError,
    enlarge,
    error_result,
    examples_in,
    positive_number,
    sampling_controls,
    sampling_progress,
    serve,
    served_name,
    whole_number,
)
from transformers import AutoConfig  # noqa: E402

MAX_IMAGES = 16
ANY_CLASS = "(cycle through the classes)"
GENERATION_TASK = "unconditional-image-generation"


class VQDemo(ImageReconstruction):
    """The model's image pipelines and the two actions of the page."""

    def __init__(self, source: str, device: str) -> None:
        self.source = source
        config = AutoConfig.from_pretrained(source, trust_remote_code=True)
        tasks = set(getattr(config, "custom_pipelines", None) or {})
        if "image-to-image" not in tasks:
            raise SystemExit(
                f"{source} ({config.model_type}) serves no image pipeline: a prior alone makes code maps, not "
                "images. Run this demo on its generation bundle (VQ-VAE + priors) instead."
            )
        super().__init__(source, device)
        self.generator = None
        if GENERATION_TASK in tasks:
            self.generator = self.pipelines.VQGenerationPipeline(task=GENERATION_TASK, **self.shared)
        id2label = getattr(self.model.config, "id2label", None) or {}
        self.num_classes = getattr(self.model.config, "num_classes", None)
        self.class_names = (
            [id2label.get(index, id2label.get(str(index), str(index))) for index in range(self.num_classes)]
            if self.num_classes
            else []
        )

    # --------------------------------------------------------------------------------------------- generation
    def generate(self, class_name, num_images, temperature, top_k, seed, progress=gr.Progress()):  # noqa: B008
        """Controls -> (grid of samples with captions, status text)."""
        try:
            num_images, temperature, top_k, seed, labels = self._generation_args(
                class_name, num_images, temperature, top_k, seed
            )
        except InputError as error:
            return error_result(error, ([],))
        progress(0, desc="sampling codes")
        # A generation bundle's priors, or a two-stage bundle's one prior.
        priors = getattr(self.model, "priors", None) or [getattr(self.model, "prior", None)]
        with sampling_progress([prior for prior in priors if prior is not None], progress):
            images = self.generator(
                num_images=num_images, seed=seed, class_labels=labels, temperature=temperature, top_k=top_k
            )
        size = max(DISPLAY_SIZE // 2, self.image_size)
        captions = self._captions(labels, num_images)
        status = f"{num_images} sample(s), seed {seed}, temperature {temperature:g}, top-k {top_k or 'all'}."
        return [(enlarge(image, size), caption) for image, caption in zip(images, captions)], status

    def _generation_args(self, class_name, num_images, temperature, top_k, seed):
        num_images = whole_number(num_images, "The number of images", 1, MAX_IMAGES)
        temperature = positive_number(temperature, "The temperature")
        top_k = whole_number(top_k, "Top-k", 0) or None
        seed = whole_number(seed, "The seed", 0, 2**63 - 1)
        labels = None
        if self.num_classes and class_name not in (None, "", ANY_CLASS):
            if class_name not in self.class_names:
                raise InputError(f"Unknown class {class_name!r}; this model knows {', '.join(self.class_names)}.")
            labels = self.class_names.index(class_name)
        return num_images, temperature, top_k, seed, labels

    def _captions(self, label: int | None, num_images: int) -> list[str]:
        if not self.num_classes:
            return [f"sample {index + 1}" for index in range(num_images)]
        # Without a class the bundle cycles through its classes (VQGenerationModel.generate).
        ids = [label] * num_images if label is not None else [index % self.num_classes for index in range(num_images)]
        return [self.class_names[index] for index in ids]


def build_demo(demo: VQDemo) -> gr.Blocks:
    """The page: a Reconstruction tab, and a Generation tab for generation bundles."""
    kind = {"vqvae": "VQ-VAE", "vqvae2": "VQ-VAE-2", "vq_generation": "VQ-VAE generation bundle",
            "vq_two_stage": "Two-stage VQ-VAE bundle"}  # fmt: skip
    title = f"{kind.get(demo.model.config.model_type, demo.model.config.model_type)} demo"
    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}\nServing {served_name(demo.source)}, {demo.image_size}x{demo.image_size} pixels, with "
            "hf_vqvae's pipelines."
        )
        with gr.Tabs():
            with gr.Tab("Reconstruction", id="reconstruction"):
                demo.tab(examples_in(demo.source, "images/example_input.*"))
            if demo.generator is not None:
                with gr.Tab("Generation", id="generation"):
                    with gr.Row():
                        class_name = gr.Dropdown(
                            [ANY_CLASS, *demo.class_names], value=ANY_CLASS, label="Class", elem_id="class",
                            visible=bool(demo.class_names),
                        )  # fmt: skip
                        num_images = gr.Slider(1, MAX_IMAGES, value=8, step=1, label="Images", elem_id="num-images")
                        temperature, top_k, seed = sampling_controls()
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
    return page


def main(argv: list[str] | None = None) -> None:
    serve(__doc__, VQDemo, build_demo, argv)


if __name__ == "__main__":
    main()
