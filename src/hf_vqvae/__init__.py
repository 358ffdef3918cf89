"""hf_vqvae: VQ-VAE, VQ-VAE-2 and PixelSNAIL priors as Hugging Face transformers models.

Importing the package registers every model with `AutoConfig`, `AutoModel` and `AutoImageProcessor`, and marks the
classes for `register_for_auto_class`, so `save_pretrained` writes an `auto_map` and copies the modelling code:
a saved folder or Hub repo then loads with `trust_remote_code=True` where hf_vqvae is not installed.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from .configuration_vqvae import VQVAEConfig
from .image_processing_vqvae import VQVAEImageProcessor
from .modeling_vqvae import VQVAEModel, VQVAEOutput
from .quantizer import VectorQuantizer, VectorQuantizerOutput

__version__ = "0.1.0"


def _register(config_class, model_class, *, takes_images: bool = True) -> None:
    AutoConfig.register(config_class.model_type, config_class, exist_ok=True)
    AutoModel.register(config_class, model_class, exist_ok=True)
    if takes_images:
        AutoImageProcessor.register(config_class, image_processor_classes={"pil": VQVAEImageProcessor}, exist_ok=True)
    config_class.register_for_auto_class()
    model_class.register_for_auto_class("AutoModel")


# One line per model. Keep this list in sync with __all__.
_register(VQVAEConfig, VQVAEModel)
VQVAEImageProcessor.register_for_auto_class("AutoImageProcessor")

__all__ = [
    "VQVAEConfig",
    "VQVAEImageProcessor",
    "VQVAEModel",
    "VQVAEOutput",
    "VectorQuantizer",
    "VectorQuantizerOutput",
]
