"""Image processor for the hf_vqvae models: any image in, `(B, C, H, W)` pixels in [-1, 1] out, and back."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_backends import PilBackend
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.processing_utils import ImagesKwargs

# PIL modes holding more than 8 bits per sample; they are rescaled to 8 bits before the usual 1/255 rescale.
_HIGH_BIT_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}


class VQVAEImageProcessorKwargs(ImagesKwargs, total=False):
    """
    num_channels (`int`, *optional*, defaults to `self.num_channels`):
        Channels the model reads: 1 converts every input to greyscale, 3 to RGB, 4 to RGBA (alpha kept).
    """

    num_channels: int


def to_pil(image) -> Image.Image:
    """Any supported input (PIL image, HWC/CHW/HW numpy array or torch tensor, any bit depth) as a PIL image in an
    8-bit mode. Alpha is kept; `_convert_mode` composites it."""
    if isinstance(image, Image.Image):
        if image.mode in _HIGH_BIT_DEPTH_MODES:
            return to_pil(np.asarray(image))
        return image
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(
            f"images must be PIL images, numpy arrays or torch tensors (or lists of them), got {type(image).__name__}"
        )
    array = image
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"an image array must be (H, W), (H, W, 1|3|4) or (1|3|4, H, W), got shape {image.shape}")
    if array.dtype == np.uint8:
        pass
    elif np.issubdtype(array.dtype, np.floating):
        # Floats are taken as [0, 1] images, the convention of numpy/torch image code.
        array = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.integer):
        # 16-bit data (PNG/TIFF "I;16", or an int32 "I" image holding 16-bit values): keep the top 8 bits.
        peak = 65535 if array.max(initial=0) > 255 else 255
        array = (np.clip(array, 0, peak).astype(np.float64) * (255.0 / peak) + 0.5).astype(np.uint8)
    else:
        raise ValueError(f"unsupported image dtype {array.dtype}")
    return Image.fromarray(array)


def _convert_mode(image: Image.Image, num_channels: int) -> Image.Image:
    """To "L" (num_channels=1), "RGB" (3) or "RGBA" (4). Palette images expand their palette; for 1 or 3 channels
    transparency is composited on white, as an image viewer shows it, rather than dropped to whatever colour the
    transparent pixels hold; a 4-channel model reads the alpha channel itself."""
    if num_channels == 4:
        return image.convert("RGBA")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("L" if num_channels == 1 else "RGB")


class VQVAEImageProcessor(PilBackend):
    r"""
    Resizes (shortest edge) and centre-crops images to the model's size, converts them to the model's channel count
    and scales them to [-1, 1]; `postprocess` maps model outputs back to PIL images.

    Accepts PIL images of any mode (greyscale, RGB, RGBA, LA, palette, CMYK, 16-bit), numpy arrays and torch tensors
    (`(H, W)`, `(H, W, C)` or `(C, H, W)`; uint8, 16-bit integers, or floats in [0, 1]), and lists of them.

    Args:
        size (`dict[str, int]`, defaults to `{"shortest_edge": 128}`): resize target of the shortest edge.
        crop_size (`dict[str, int]`, defaults to `{"height": 128, "width": 128}`): centre crop after resizing.
        num_channels (`int`, defaults to 3): 1 for greyscale models, 3 for RGB, 4 for RGBA.
        do_convert_rgb (`bool`, *optional*): `False` keeps each image's own channels (a 4-channel array stays 4
            channels whatever `num_channels` says); by default every image is converted to `num_channels`.

    Example:

    ```python
    >>> from PIL import Image
    >>> from hf_vqvae import VQVAEImageProcessor
    >>> processor = VQVAEImageProcessor.for_model_size(64, num_channels=3)
    >>> processor(Image.new("RGBA", (100, 80)), return_tensors="pt").pixel_values.shape
    torch.Size([1, 3, 64, 64])
    ```
    """

    valid_kwargs = VQVAEImageProcessorKwargs
    model_input_names = ["pixel_values"]

    resample = PILImageResampling.BICUBIC
    size = {"shortest_edge": 128}
    crop_size = {"height": 128, "width": 128}
    do_resize = True
    do_center_crop = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = 0.5
    image_std = 0.5
    num_channels = 3

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        if self.num_channels not in (1, 3, 4):
            raise ValueError(f"num_channels must be 1 (greyscale), 3 (RGB) or 4 (RGBA), got {self.num_channels!r}")

    @classmethod
    def for_model_size(cls, image_size: int, num_channels: int = 3, **kwargs) -> VQVAEImageProcessor:
        """A processor producing `image_size` x `image_size` inputs with `num_channels` channels."""
        return cls(
            size={"shortest_edge": image_size},
            crop_size={"height": image_size, "width": image_size},
            num_channels=num_channels,
            **kwargs,
        )

    def process_image(
        self,
        image,
        num_channels: int | None = None,
        do_convert_rgb: bool | None = None,
        input_data_format: str | ChannelDimension | None = None,
        **kwargs,
    ) -> np.ndarray:
        """One image to a channels-first uint8 array with the model's channel count, or with its own channels when
        `do_convert_rgb=False`. `input_data_format` settles the layout of arrays that could be read either way."""
        channels_first = input_data_format is not None and ChannelDimension(input_data_format) == "channels_first"
        if channels_first and isinstance(image, (np.ndarray, torch.Tensor)) and image.ndim == 3:
            image = image.permute(1, 2, 0) if isinstance(image, torch.Tensor) else np.moveaxis(image, 0, -1)
        image = to_pil(image)
        if do_convert_rgb is not False:
            image = _convert_mode(image, num_channels or self.num_channels)
        array = np.asarray(image)
        return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)

    def postprocess(self, pixel_values: torch.Tensor, output_type: str = "pil") -> list[Image.Image] | np.ndarray:
        """Model outputs `(B, C, H, W)` in [-1, 1] to a list of PIL images (`output_type="pil"`) or a uint8 array
        `(B, H, W, C)` (`output_type="np"`). Values outside [-1, 1] are clipped."""
        if not isinstance(pixel_values, torch.Tensor) or pixel_values.dim() != 4:
            raise ValueError(
                f"postprocess expects a (batch, channels, height, width) tensor, got "
                f"{tuple(pixel_values.shape) if isinstance(pixel_values, torch.Tensor) else type(pixel_values)}"
            )
        if output_type not in ("pil", "np"):
            raise ValueError(f"output_type must be 'pil' or 'np', got {output_type!r}")
        mean = torch.tensor(self.image_mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(self.image_std, dtype=torch.float32).view(1, -1, 1, 1)
        images = (pixel_values.detach().float().cpu() * std + mean).clamp(0, 1)
        array = (images * 255 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return array
        return [Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a) for a in array]


__all__ = ["VQVAEImageProcessor"]
