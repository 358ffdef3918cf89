"""hf_vqvae: VQ-VAE, VQ-VAE-2 and PixelSNAIL priors as Hugging Face transformers models.

Importing the package registers every model with `AutoConfig`, `AutoModel` and `AutoImageProcessor`, and marks the
classes for `register_for_auto_class`, so `save_pretrained` writes an `auto_map` and copies the modelling code:
a saved folder or Hub repo then loads with `trust_remote_code=True` where hf_vqvae is not installed.
"""

from transformers import AutoConfig, AutoFeatureExtractor, AutoImageProcessor, AutoModel
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_audio_vqvae import AudioVQVAEConfig
from .configuration_generation import VQGenerationConfig
from .configuration_pixelsnail import PixelSNAILConfig
from .configuration_two_stage import VQTwoStageConfig
from .configuration_video import VQVideoConfig
from .configuration_vqvae import VQVAEConfig
from .configuration_vqvae2 import VQVAE2Config
from .feature_extraction_audio import VQVAEAudioFeatureExtractor
from .image_processing_vqvae import VQVAEImageProcessor
from .modeling_audio_vqvae import AudioVQVAEModel, AudioVQVAEOutput
from .modeling_generation import VQGenerationModel
from .modeling_pixelsnail import PixelSNAILModel, PixelSNAILOutput
from .modeling_two_stage import VQTwoStageModel, VQTwoStageOutput
from .modeling_video import VQVideoModel, VQVideoOutput
from .modeling_vqvae import VQVAEModel, VQVAEOutput
from .modeling_vqvae2 import VQVAE2Model, VQVAE2Output
from .pipeline_audio_generation import VQAudioGenerationPipeline
from .pipeline_audio_vqvae import AudioVQVAEAudioToAudioPipeline, AudioVQVAEFeatureExtractionPipeline
from .pipeline_video import VQVideoPipeline
from .pipeline_vqvae import VQGenerationPipeline, VQVAEFeatureExtractionPipeline, VQVAEImageToImagePipeline
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
_register(PixelSNAILConfig, PixelSNAILModel, takes_images=False)
_register(VQVAE2Config, VQVAE2Model)
_register(VQGenerationConfig, VQGenerationModel)
_register(VQVideoConfig, VQVideoModel)
_register(VQTwoStageConfig, VQTwoStageModel)
VQVAEImageProcessor.register_for_auto_class("AutoImageProcessor")
_register(AudioVQVAEConfig, AudioVQVAEModel, takes_images=False)
AutoFeatureExtractor.register(AudioVQVAEConfig, VQVAEAudioFeatureExtractor, exist_ok=True)
VQVAEAudioFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")

# Pipelines for the tasks transformers has no built-in pipeline for. `image-feature-extraction` is deliberately NOT
# registered here: it is a built-in task, and registering would replace transformers' pipeline for every model in the
# process. Repos name all their pipelines, that one included, in config.json's `custom_pipelines`
# (`hub.add_pipelines`), which `pipeline(task, model=repo_id, trust_remote_code=True)` reads before the registry.
PIPELINE_REGISTRY.register_pipeline(
    "image-to-image", pipeline_class=VQVAEImageToImagePipeline, pt_model=AutoModel, type="image"
)
PIPELINE_REGISTRY.register_pipeline(
    "unconditional-image-generation", pipeline_class=VQGenerationPipeline, pt_model=AutoModel, type="image"
)
PIPELINE_REGISTRY.register_pipeline(
    "video-prediction", pipeline_class=VQVideoPipeline, pt_model=AutoModel, type="image"
)
# `feature-extraction` is built in, like `image-feature-extraction`: audio repos name it in `custom_pipelines`.
PIPELINE_REGISTRY.register_pipeline(
    "audio-to-audio", pipeline_class=AudioVQVAEAudioToAudioPipeline, pt_model=AutoModel, type="audio"
)
# Speech from a speech generation bundle: a task of this package (transformers' text-to-audio reads text).
PIPELINE_REGISTRY.register_pipeline(
    "unconditional-audio-generation", pipeline_class=VQAudioGenerationPipeline, pt_model=AutoModel, type="audio"
)

__all__ = [
    "AudioVQVAEAudioToAudioPipeline",
    "AudioVQVAEConfig",
    "AudioVQVAEFeatureExtractionPipeline",
    "AudioVQVAEModel",
    "AudioVQVAEOutput",
    "PixelSNAILConfig",
    "PixelSNAILModel",
    "PixelSNAILOutput",
    "VQAudioGenerationPipeline",
    "VQGenerationConfig",
    "VQGenerationModel",
    "VQGenerationPipeline",
    "VQTwoStageConfig",
    "VQTwoStageModel",
    "VQTwoStageOutput",
    "VQVAE2Config",
    "VQVAE2Model",
    "VQVAE2Output",
    "VQVAEAudioFeatureExtractor",
    "VQVAEConfig",
    "VQVAEFeatureExtractionPipeline",
    "VQVAEImageProcessor",
    "VQVAEImageToImagePipeline",
    "VQVAEModel",
    "VQVAEOutput",
    "VQVideoConfig",
    "VQVideoModel",
    "VQVideoOutput",
    "VQVideoPipeline",
    "VectorQuantizer",
    "VectorQuantizerOutput",
]
