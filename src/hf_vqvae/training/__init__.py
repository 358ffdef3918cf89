"""Training utilities shared by the scripts: per-model tasks and crash-safe checkpoints.

The tasks evaluate with `hf_vqvae.evaluation`'s loops and draw their pictures with `hf_vqvae.images`; the names of
`codes_info.json` and the image grids are re-exported here for the code that imported them from this package.
"""

from ..codes_info import CODES_INFO_FILE as CODES_INFO
from ..codes_info import CodesInfo
from ..images import image_grid, save_reconstruction_grid, save_sample_grid
from .checkpoints import list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint
from .tasks import TASKS, ImageTask, PriorTask

# `codes_info.json` of a code dataset or a prior, as a `CodesInfo` record.
load_codes_info = CodesInfo.read

__all__ = [
    "CODES_INFO",
    "TASKS",
    "ImageTask",
    "PriorTask",
    "image_grid",
    "list_checkpoints",
    "load_checkpoint",
    "load_codes_info",
    "resolve_checkpoint",
    "save_checkpoint",
    "save_reconstruction_grid",
    "save_sample_grid",
]
