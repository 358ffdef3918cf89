"""Training utilities shared by the scripts: per-model tasks, crash-safe checkpoints, image grids."""

from .checkpoints import list_checkpoints, load_checkpoint, resolve_checkpoint, save_checkpoint
from .images import image_grid, save_reconstruction_grid, save_sample_grid
from .tasks import CODES_INFO, TASKS, ImageTask, PriorTask, load_codes_info

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
