"""VQVAEImageProcessor: every image mode to the model's channel count in [-1, 1], and back to PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoImageProcessor

from hf_vqvae import VQVAEImageProcessor
from hf_vqvae.data import skimage_photos


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return skimage_photos(("chelsea",))[0]  # 451 x 300 RGB cat


def test_rgb_photo_is_resized_cropped_and_scaled(photo):
    processor = VQVAEImageProcessor.for_model_size(64)
    pixels = processor(photo, return_tensors="pt").pixel_values
    assert pixels.shape == (1, 3, 64, 64) and pixels.dtype == torch.float32
    assert -1.0 <= pixels.min() < -0.5 and 0.5 < pixels.max() <= 1.0

    # Shortest edge to 64 then a centre crop, scaled x / 127.5 - 1: compare with PIL doing the same by hand.
    width, height = photo.size
    resized = photo.resize((round(width * 64 / height), 64), Image.Resampling.BICUBIC)
    left = (resized.width - 64) // 2
    expected = np.asarray(resized.crop((left, 0, left + 64, 64)), dtype=np.float32) / 127.5 - 1.0
    np.testing.assert_allclose(pixels[0].permute(1, 2, 0).numpy(), expected, atol=1.5 / 127.5)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "PA", "CMYK", "I;16", "I", "1", "YCbCr"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_mode_converts_to_the_model_channel_count(photo, mode, channels):
    if mode in ("I;16", "I"):
        grey = np.asarray(photo.convert("L"), dtype=np.uint16) * 257  # full 16-bit range
        image = Image.fromarray(grey.astype(np.uint16 if mode == "I;16" else np.int32))
        assert image.mode == mode
    else:
        image = photo.convert(mode)
    pixels = VQVAEImageProcessor.for_model_size(32, num_channels=channels)(image, return_tensors="pt").pixel_values
    assert pixels.shape == (1, channels, 32, 32)
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0
    if mode not in ("1",):
        assert pixels.std() > 0.1, "the conversion must keep the picture, not flatten it"


def test_sixteen_bit_keeps_its_range():
    ramp = (np.arange(64, dtype=np.uint32) * 1040).reshape(1, 64).repeat(64, 0).astype(np.uint16)
    pixels = VQVAEImageProcessor.for_model_size(64, num_channels=1)(Image.fromarray(ramp), return_tensors="pt")
    row = pixels.pixel_values[0, 0, 0]
    assert row[0] == -1.0 and row[-1] > 0.95, "16-bit data must be scaled to 8 bits, not clipped at 255"


def test_transparency_is_composited_on_white():
    image = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # fully transparent black
    pixels = VQVAEImageProcessor.for_model_size(8)(image, return_tensors="pt").pixel_values
    assert torch.equal(pixels, torch.ones(1, 3, 8, 8))


def test_four_channel_model_gets_its_alpha_channel(photo):
    """A 4-channel model (in_channels=4) reads RGBA with the alpha channel itself, not composited away; with
    `do_convert_rgb=False` any processor passes a 4-channel array's own channels through, in either layout."""
    crop = np.asarray(photo.crop((100, 50, 132, 82)))
    alpha = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))  # a ramp from transparent to opaque
    rgba = np.dstack([crop, alpha])
    expected = torch.from_numpy(np.moveaxis(rgba, -1, 0).astype(np.float32) / 127.5 - 1.0)[None]

    rgba_model = VQVAEImageProcessor.for_model_size(32, num_channels=4)
    for image in (rgba, Image.fromarray(rgba), photo.crop((100, 50, 132, 82)).convert("RGBA")):
        pixels = rgba_model(image, return_tensors="pt").pixel_values
        assert pixels.shape == (1, 4, 32, 32)
        if not isinstance(image, Image.Image) or image.getchannel("A").getextrema() != (255, 255):
            torch.testing.assert_close(pixels, expected, atol=1.5 / 127.5, rtol=0)
        else:  # an RGB photo gains an opaque alpha channel
            assert torch.equal(pixels[0, 3], torch.ones(32, 32))
    (restored,) = rgba_model.postprocess(rgba_model(rgba, return_tensors="pt").pixel_values)
    assert restored.mode == "RGBA" and np.abs(np.asarray(restored).astype(int) - rgba).max() <= 1

    rgb_model = VQVAEImageProcessor.for_model_size(32)
    composited = rgb_model(rgba, return_tensors="pt").pixel_values
    assert composited.shape == (1, 3, 32, 32)
    kept = {"do_convert_rgb": False, "return_tensors": "pt"}
    for image, layout in ((rgba, "channels_last"), (np.moveaxis(rgba, -1, 0).copy(), "channels_first")):
        pixels = rgb_model(image, input_data_format=layout, **kept).pixel_values
        torch.testing.assert_close(pixels, expected, atol=1.5 / 127.5, rtol=0)


def test_arrays_and_tensors_of_any_layout(photo):
    processor = VQVAEImageProcessor.for_model_size(32)
    reference = processor(photo, return_tensors="pt").pixel_values
    hwc = np.asarray(photo)
    for image in (hwc, np.moveaxis(hwc, -1, 0), torch.from_numpy(np.moveaxis(hwc, -1, 0).copy()), hwc / 255.0):
        torch.testing.assert_close(
            processor(image, return_tensors="pt").pixel_values, reference, atol=2 / 127.5, rtol=0
        )


def test_batches_and_lists(photo):
    processor = VQVAEImageProcessor.for_model_size(16)
    pixels = processor([photo, photo.convert("L"), photo.convert("RGBA")], return_tensors="pt").pixel_values
    assert pixels.shape == (3, 3, 16, 16)


def test_postprocess_inverts_preprocess_exactly_for_8_bit_images(photo):
    crop = photo.crop((100, 50, 164, 114))
    processor = VQVAEImageProcessor.for_model_size(64)
    pixels = processor(crop, return_tensors="pt").pixel_values
    (restored,) = processor.postprocess(pixels)
    assert restored.mode == "RGB" and restored.size == (64, 64)
    assert np.array_equal(np.asarray(restored), np.asarray(crop))
    grey = VQVAEImageProcessor.for_model_size(64, num_channels=1)
    assert grey.postprocess(grey(crop, return_tensors="pt").pixel_values)[0].mode == "L"
    array = processor.postprocess(pixels, output_type="np")
    assert array.shape == (1, 64, 64, 3) and array.dtype == np.uint8


def test_save_and_load_through_auto_image_processor(tmp_path):
    processor = VQVAEImageProcessor.for_model_size(48, num_channels=1)
    processor.save_pretrained(tmp_path)
    loaded = AutoImageProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, VQVAEImageProcessor)
    assert loaded.num_channels == 1 and loaded.crop_size["height"] == 48 and loaded.size["shortest_edge"] == 48


def test_bad_inputs_raise_clear_errors():
    processor = VQVAEImageProcessor.for_model_size(16)
    with pytest.raises(TypeError, match="int"):
        processor(12345)
    with pytest.raises(TypeError, match="dict"):
        processor([{"not": "an image"}])
    with pytest.raises(ValueError, match="image array must be"):
        processor(np.zeros((5, 5, 7), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"num_channels must be 1 \(greyscale\), 3 \(RGB\) or 4 \(RGBA\)"):
        VQVAEImageProcessor(num_channels=2)
    with pytest.raises(ValueError, match="postprocess expects"):
        processor.postprocess(torch.zeros(3, 16, 16))
