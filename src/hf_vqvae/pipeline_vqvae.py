"""`transformers` pipelines for the hf_vqvae models, written to be copied into Hub repos and loaded with
`pipeline(task, model=repo_id, trust_remote_code=True)` where hf_vqvae is not installed: this file imports only
transformers, torch, numpy and PIL (no `hf_vqvae`, no relative imports), and reads the model by duck typing.

* `image-to-image` ([`VQVAEImageToImagePipeline`]): reconstruction, image in, image out.
* `image-feature-extraction` ([`VQVAEFeatureExtractionPipeline`]): the discrete codes and the quantized embeddings.
* `unconditional-image-generation` ([`VQGenerationPipeline`]): images sampled from a generation bundle.

The image pipelines take what transformers' image pipelines take: a PIL image, a local path, an `http(s)://` URL, a
base64 string, a numpy array or torch tensor, or a list of them; `batch_size=N` batches the forward passes.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps
from transformers import Pipeline
from transformers.image_utils import load_image


def _load_pipeline_image(image: Any, timeout: float | None = None) -> Any:
    """A path, URL or base64 string as a PIL image; anything else (PIL image, array, tensor) unchanged, for the
    image processor. Local files are opened as they are: `load_image` converts to RGB, which would clip 16-bit
    greyscale and drop alpha before the processor can composite it."""
    if isinstance(image, os.PathLike):
        image = os.fspath(image)
    if isinstance(image, str):
        if not image.startswith(("http://", "https://")) and os.path.isfile(image):
            opened = Image.open(image)
            opened.load()
            return ImageOps.exif_transpose(opened)
        return load_image(image, timeout=timeout)
    return image


def _vq_model(model: torch.nn.Module) -> torch.nn.Module:
    """The VQ-VAE(-2) of a VQ model or of a generation bundle (which holds one as `vq_model`)."""
    return getattr(model, "vq_model", model)


class _VQImagePipeline(Pipeline):
    """Shared preprocessing of the image pipelines: any image input -> `pixel_values` (1, C, H, W) in [-1, 1]."""

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def preprocess(self, image, timeout: float | None = None) -> dict[str, torch.Tensor]:
        image = _load_pipeline_image(image, timeout=timeout)
        pixel_values = self.image_processor(image, return_tensors="pt").pixel_values
        return {"pixel_values": pixel_values.to(self.model.dtype)}


class VQVAEImageToImagePipeline(_VQImagePipeline):
    """Reconstruction: each image is encoded to codes and decoded back, at the model's resolution.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> reconstruct = pipeline("image-to-image", model="org/vqvae", trust_remote_code=True)
    >>> reconstruct("photo.png")  # doctest: +SKIP
    <PIL.Image.Image image mode=RGB size=128x128>
    >>> reconstruct(["a.png", "b.png"], batch_size=2)  # doctest: +SKIP
    [<PIL.Image.Image ...>, <PIL.Image.Image ...>]
    ```

    Call args:
        images: one image or a list (PIL, path, URL, base64 string, array, tensor).
        output_type (`str`, defaults to `"pil"`): `"pil"` for a PIL image per input, `"np"` for a uint8 array
            `(H, W, C)`, `"pt"` for the raw reconstruction `(C, H, W)` in [-1, 1].
        timeout (`float`, *optional*): seconds to wait for a URL.
    """

    def _sanitize_parameters(self, output_type: str | None = None, timeout: float | None = None, **kwargs):
        preprocess_params = {"timeout": timeout} if timeout is not None else {}
        postprocess_params = {}
        if output_type is not None:
            if output_type not in ("pil", "np", "pt"):
                raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
            postprocess_params["output_type"] = output_type
        return preprocess_params, {}, postprocess_params

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        reconstruction = _vq_model(self.model)(model_inputs["pixel_values"]).reconstruction
        return {"reconstruction": reconstruction.clamp(-1, 1)}

    def postprocess(self, model_outputs: dict[str, torch.Tensor], output_type: str = "pil"):
        reconstruction = model_outputs["reconstruction"].float().cpu()  # (1, C, H, W): one image per call
        if output_type == "pt":
            return reconstruction[0]
        return self.image_processor.postprocess(reconstruction, output_type=output_type)[0]


class VQVAEFeatureExtractionPipeline(_VQImagePipeline):
    """The discrete representation of each image: its code map(s) and the quantized embeddings (the codebook
    vectors the decoder reads).

    Example:

    ```python
    >>> from transformers import pipeline
    >>> extract = pipeline("image-feature-extraction", model="org/vqvae", trust_remote_code=True)
    >>> features = extract("photo.png", return_tensors=True)  # doctest: +SKIP
    >>> features["codes"].shape, features["quantized"].shape  # doctest: +SKIP
    (torch.Size([32, 32]), torch.Size([64, 32, 32]))
    ```

    Call args:
        images: one image or a list (PIL, path, URL, base64 string, array, tensor).
        return_tensors (`bool`, defaults to `False`): torch tensors; otherwise nested Python lists (JSON-friendly,
            as transformers' own feature-extraction pipelines return).
        timeout (`float`, *optional*): seconds to wait for a URL.

    Returns (per image) a dict:
        codes: the code map `(h, w)` (long) of a one-level model (a VQ-VAE); for a hierarchy (VQ-VAE-2) a list with
            one map per level, top first.
        quantized: the quantized embeddings `(D, h, w)`, or a list of them, one per level, top first.
    """

    def _sanitize_parameters(self, return_tensors: bool | None = None, timeout: float | None = None, **kwargs):
        preprocess_params = {"timeout": timeout} if timeout is not None else {}
        postprocess_params = {"return_tensors": return_tensors} if return_tensors is not None else {}
        return preprocess_params, {}, postprocess_params

    def _forward(self, model_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        vq_model = _vq_model(self.model)
        # One flat key per level: the pipeline's batch splitter slices each dict value along the batch dimension,
        # which a tuple of per-level tensors would defeat (it would index the tuple instead).
        outputs: dict[str, torch.Tensor] = {}
        for level, level_codes in enumerate(vq_model.encode_levels(model_inputs["pixel_values"])):
            outputs[f"codes_{level}"] = level_codes
            outputs[f"quantized_{level}"] = vq_model.quantizers[level].embed(level_codes)
        return outputs

    def postprocess(self, model_outputs: dict[str, Any], return_tensors: bool = False) -> dict[str, Any]:
        num_levels = sum(key.startswith("codes_") for key in model_outputs)
        codes = [model_outputs[f"codes_{level}"][0].cpu() for level in range(num_levels)]
        quantized = [model_outputs[f"quantized_{level}"][0].float().cpu() for level in range(num_levels)]
        if not return_tensors:
            codes = [c.tolist() for c in codes]
            quantized = [q.tolist() for q in quantized]
        if num_levels == 1:  # a VQ-VAE's one map, as its `encode` returns it
            return {"codes": codes[0], "quantized": quantized[0]}
        return {"codes": codes, "quantized": quantized}


class VQGenerationPipeline(Pipeline):
    """Unconditional (or class-conditional) image generation from a generation bundle: ancestral sampling through
    its priors, then decoding.

    Example:

    ```python
    >>> from transformers import pipeline
    >>> generate = pipeline("unconditional-image-generation", model="org/vqvae-generation", trust_remote_code=True)
    >>> images = generate(num_images=4, seed=0)  # doctest: +SKIP
    >>> images = generate(num_images=4, seed=0, class_labels="Sneaker", temperature=0.9, top_k=50)  # doctest: +SKIP
    >>> images = generate(num_images=4, seed=0, class_labels="Sneaker", guidance_scale=3.0)  # doctest: +SKIP
    ```

    Call args:
        num_images (`int`, defaults to 1): how many images.
        seed (`int`, *optional*): seeds the sampler; the same seed gives the same images.
        class_labels (`int`, `str` or a list of them, *optional*): for class-conditional priors, one label for every
            image or one per image; names are looked up in the config's `id2label`. Without labels, a
            class-conditional bundle cycles through its classes.
        temperature (`float`, defaults to 1.0): divides the logits; below 1 gives safer, less diverse samples.
        top_k (`int`, *optional*): sample among the `top_k` most likely codes only.
        guidance_scale (`float`, *optional*): classifier-free guidance, for class-conditional priors trained with a
            null class: 1 is plain conditional sampling, 0 unconditional, above 1 more typical of the class.
        use_cache (`bool`, defaults to `True`): incremental sampling (fast); `False` gives the same images slowly.
        output_type (`str`, defaults to `"pil"`): `"pil"`, `"np"` (uint8 `(N, H, W, C)`) or `"pt"` (`(N, C, H, W)`
            in [-1, 1]).

    Returns:
        a list of `num_images` PIL images (or an array / tensor, see `output_type`).
    """

    _load_processor = False
    _load_image_processor = True
    _load_feature_extractor = False
    _load_tokenizer = False

    def __call__(self, num_images: int = 1, **kwargs):
        # Nothing to read: the one "input" is the number of images, so that `generate()` and `generate(4)` work.
        return super().__call__({"num_images": num_images}, **kwargs)

    def _sanitize_parameters(
        self,
        seed: int | None = None,
        class_labels=None,
        temperature: float | None = None,
        top_k: int | None = None,
        use_cache: bool | None = None,
        output_type: str | None = None,
        guidance_scale: float | None = None,
        **kwargs,
    ):
        preprocess_params = {"seed": seed, "class_labels": class_labels}
        given = (("temperature", temperature), ("top_k", top_k), ("use_cache", use_cache),
                 ("guidance_scale", guidance_scale))  # fmt: skip
        forward_params = {key: value for key, value in given if value is not None}
        postprocess_params = {}
        if output_type is not None:
            if output_type not in ("pil", "np", "pt"):
                raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")
            postprocess_params["output_type"] = output_type
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, inputs: dict[str, Any], seed: int | None = None, class_labels=None) -> dict[str, Any]:
        num_images = inputs["num_images"]
        if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images <= 0:
            raise ValueError(f"`num_images` must be a positive integer, got {num_images!r}")
        generator = torch.Generator(device=self.device)
        if seed is not None:
            generator.manual_seed(int(seed))
        else:
            generator.seed()
        return {"num_images": num_images, "class_labels": self._label_ids(class_labels), "generator": generator}

    def _label_ids(self, class_labels) -> list[int] | None:
        """Class names or ids -> ids, through the config's `id2label`."""
        if class_labels is None:
            return None
        labels = class_labels if isinstance(class_labels, (list, tuple)) else [class_labels]
        id2label = getattr(self.model.config, "id2label", None) or {}
        label2id = {name: int(index) for index, name in id2label.items()}
        ids = []
        for label in labels:
            if isinstance(label, str):
                if label not in label2id:
                    raise ValueError(f"unknown class label {label!r}: this model knows {sorted(label2id)}")
                ids.append(label2id[label])
            else:
                ids.append(int(label))
        return ids

    def _forward(self, model_inputs: dict[str, Any], **generate_kwargs) -> dict[str, torch.Tensor]:
        pixels = self.model.generate(
            model_inputs["num_images"],
            class_labels=model_inputs["class_labels"],
            generator=model_inputs["generator"],
            **generate_kwargs,
        )
        return {"images": pixels}

    def postprocess(self, model_outputs: dict[str, torch.Tensor], output_type: str = "pil"):
        images = model_outputs["images"].float().cpu()
        if output_type == "pt":
            return images
        output = self.image_processor.postprocess(images, output_type=output_type)
        return np.asarray(output) if output_type == "np" else output


__all__ = ["VQGenerationPipeline", "VQVAEFeatureExtractionPipeline", "VQVAEImageToImagePipeline"]
