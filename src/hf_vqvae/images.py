"""PNG grids of what people look at: inputs beside reconstructions, and samples. Training writes them at every
evaluation, `scripts/sample.py` and the Hub repos (`hf_vqvae.hub`) show them."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def image_grid(
    images: list[Image.Image], columns: int, padding: int = 2, background: int = 255, min_side: int = 64
) -> Image.Image:
    """Tiles equally sized images row by row, `columns` per row, with `padding` pixels between them. Images smaller
    than `min_side` are enlarged by an integer factor (nearest neighbour, so pixels stay pixels) to be seen."""
    if not images:
        raise ValueError("image_grid needs at least one image")
    scale = max(1, -(-min_side // max(images[0].size)))
    if scale > 1:
        images = [
            image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST) for image in images
        ]
    width, height = images[0].size
    rows = -(-len(images) // columns)
    mode = "RGB" if any(image.mode != "L" for image in images) else "L"
    fill = background if mode == "L" else (background,) * 3
    grid = Image.new(mode, (columns * (width + padding) + padding, rows * (height + padding) + padding), fill)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid.paste(image.convert(mode), (padding + column * (width + padding), padding + row * (height + padding)))
    return grid


def save_reconstruction_grid(
    inputs: list[Image.Image], reconstructions: list[Image.Image], path: str | Path, columns: int = 8
) -> Path:
    """Rows alternate: `columns` inputs, then their reconstructions underneath."""
    tiles = []
    for start in range(0, len(inputs), columns):
        tiles += inputs[start : start + columns] + reconstructions[start : start + columns]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(tiles, columns).save(path)
    return path


def save_sample_grid(samples: list[Image.Image], path: str | Path, columns: int = 8) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_grid(samples, columns).save(path)
    return path
