"""rosinality/vq-vae-2-pytorch VQ-VAE checkpoints as [`VQVAE2Model`]s.

That project's `VQVAE(in_channel, channel, n_res_block, n_res_channel, embed_dim, n_embed)` is a two-level VQ-VAE-2
(top map at 1/8, bottom at 1/4 of the image side) whose layers map one to one onto ours, with three differences
that the conversion handles exactly:

* its top encoder's strided convolution writes `channel // 2` channels, ours `hidden_channels`: the converted config
  sets `upper_encoder_downsample_channels = channel // 2`;
* its bottom quantiser input is `cat([decoded top, bottom encoder features])`, ours the other way round: the input
  channels of that 1x1 convolution's weight are swapped;
* its codebooks are `(embed_dim, n_embed)` (`embed`, with the EMA state `cluster_size` and `embed_avg`), ours
  `(K, D)` (`codebook`, `ema_count`, `ema_sum`): transposed. Its EMA update is the same (decay 0.99, Laplace
  smoothing 1e-5), so a converted model also continues training as the original would.

Its training scripts save `model.state_dict()` (with a `module.` prefix under DistributedDataParallel), which
`torch.load(..., weights_only=True)` reads without running any code. Their images are in [-1, 1], as ours.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers.image_utils import PILImageResampling

from ..configuration_vqvae2 import VQVAE2Config
from ..image_processing_vqvae import VQVAEImageProcessor
from ..modeling_vqvae2 import VQVAE2Model

SOURCE_URL = "https://github.com/rosinality/vq-vae-2-pytorch"
# Their top map is 1/8 of the image side and the bottom one 1/4: the encoders' strides (4, then 2) are fixed.
DOWNSAMPLE_FACTORS = [8, 4]
# Their training script's latent loss weight, EMA decay and smoothing (train_vqvae.py, vqvae.Quantize defaults).
COMMITMENT_COST = 0.25
DECAY = 0.99
EPSILON = 1e-5
# Quantizer state that has no counterpart in their checkpoints; it keeps its initial value.
_BOOKKEEPING_BUFFERS = ("initialized", "step", "last_used")
# Tensors whose presence identifies their VQ-VAE; the first ones read its sizes.
_ANCHOR_KEYS = (
    "enc_b.blocks.0.weight",
    "enc_t.blocks.0.weight",
    "quantize_t.embed",
    "quantize_b.embed",
    "quantize_conv_b.weight",
    "dec.blocks.0.weight",
)
_MAX_LISTED = 12


class CheckpointError(ValueError):
    """A file that is not a readable rosinality VQ-VAE checkpoint; the message says what is wrong with it."""


@dataclass(frozen=True)
class RosinalityVQVAEArgs:
    """The constructor arguments of their `VQVAE`, as read from a checkpoint's tensor shapes.

    `n_res_channel` is None when `n_res_block` is 0 (no tensor holds it then).
    """

    in_channel: int
    channel: int
    n_res_block: int
    n_res_channel: int | None
    embed_dim: int
    n_embed: int

    def to_config(self, image_size: int = 256) -> VQVAE2Config:
        """The [`VQVAE2Config`] of the same network. k-means initialisation and dead-code restarts are off, as in
        their training, so that fine-tuning the converted model updates the codebooks as theirs would."""
        return VQVAE2Config(
            in_channels=self.in_channel,
            image_size=image_size,
            hidden_channels=self.channel,
            residual_channels=self.n_res_channel or self.channel,
            num_residual_blocks=self.n_res_block,
            downsample_factors=list(DOWNSAMPLE_FACTORS),
            num_embeddings=self.n_embed,
            embedding_dim=self.embed_dim,
            commitment_cost=COMMITMENT_COST,
            decay=DECAY,
            epsilon=EPSILON,
            kmeans_init=False,
            dead_code_threshold=0.0,
            upper_encoder_downsample_channels=self.channel // 2,
        )

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


# ------------------------------------------------------------------------------------------------------- reading
def load_rosinality_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, read with `torch.load(..., weights_only=True)` (no code runs).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: a truncated or corrupt file, a file that is no `torch.save` output, a pickle that needs
            code to load (weights_only refuses it: e.g. an `argparse.Namespace` or a whole pickled model), or
            anything other than a flat name -> tensor dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {str(path)!r}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - every failure of the reader is reported as one clear error
        raise _read_error(path, error) from error
    if not isinstance(loaded, dict):
        raise CheckpointError(
            f"{path} holds a {type(loaded).__name__}, not a state dict (a dict of parameter name -> tensor, as "
            "rosinality's train_vqvae.py saves with torch.save(model.state_dict(), ...))"
        )
    not_tensors = sorted(str(key) for key, value in loaded.items() if not isinstance(value, torch.Tensor))
    if not_tensors:
        raise CheckpointError(
            f"{path} is a dict but not a state dict: entries {_listing(not_tensors)} are not tensors. rosinality's "
            "train_vqvae.py saves the VQ-VAE's state dict alone; its PixelSNAIL checkpoints ({'model': ..., "
            "'args': ...}) are priors, which this converter does not handle"
        )
    # DistributedDataParallel (train_vqvae.py --n_gpu > 1) saves every name with a "module." prefix.
    if loaded and all(key.startswith("module.") for key in loaded):
        loaded = {key[len("module.") :]: value for key, value in loaded.items()}
    return loaded


def _read_error(path: Path, error: Exception) -> CheckpointError:
    message = str(error)
    # torch names the class a pickle would have to import and call: a genuine pickle of Python objects.
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", message)
    if refused:
        return CheckpointError(
            f"{path} needs code to load: it contains a Python object of type {refused.group(1)}, which "
            "torch.load(weights_only=True) refuses because unpickling it could run arbitrary code; hf_vqvae only "
            "reads tensors. rosinality's train_vqvae.py saves a plain state dict, which loads; a pickled nn.Module "
            "or a checkpoint with an argparse.Namespace (its PixelSNAIL checkpoints) does not. If you trust the "
            "file, re-save only its tensors, e.g. torch.save(model.state_dict(), 'vqvae.pt') in the code that made "
            "it, and convert that"
        )
    # Otherwise the reader failed on the bytes themselves; torch's own reason is its "WeightsUnpickler error" line
    # for pickle data, the first line of the message for the zip container.
    detail = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", message, flags=re.S)
    reason = detail.group(1) if detail else (message.strip().splitlines() or [""])[0]
    return CheckpointError(
        f"cannot read {path} ({path.stat().st_size} bytes) as a PyTorch checkpoint: the file is truncated, corrupt "
        f"or not a torch.save file ({type(error).__name__}: {reason or 'no details'}). Download or copy it again"
    )


def _modules(state_dict: dict[str, torch.Tensor]) -> str:
    """What a state dict holds, in a line: its tensor count per top-level module, e.g. `3 tensors: enc.* (2), x`."""
    counts: dict[str, int] = {}
    for key in state_dict:
        prefix = key.split(".", 1)[0] + (".*" if "." in key else "")
        counts[prefix] = counts.get(prefix, 0) + 1
    modules = ", ".join(f"{prefix} ({count})" for prefix, count in sorted(counts.items()))
    return f"{len(state_dict)} tensors: {modules}" if state_dict else "no tensors"


def _listing(names: list[str] | set[str]) -> str:
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


# ------------------------------------------------------------------------------------------ architecture and keys
def rosinality_vqvae_args(state_dict: dict[str, torch.Tensor]) -> RosinalityVQVAEArgs:
    """Reads their `VQVAE`'s constructor arguments from the tensor shapes and checks that the state dict holds
    exactly that network's tensors, with the right shapes.

    Raises:
        CheckpointError: naming the expected and found tensors, when the state dict is another model's.
    """
    missing = [key for key in _ANCHOR_KEYS if key not in state_dict]
    if missing:
        hint = ""
        if any(key.startswith(("horizontal.", "vertical.", "blocks.0.resblocks")) for key in state_dict):
            hint = " It looks like a rosinality PixelSNAIL prior; only their VQ-VAE converts."
        elif any(key.startswith("quantizers.0.") for key in state_dict):
            hint = " It looks like an hf_vqvae model already: load it with from_pretrained."
        raise CheckpointError(
            "not a rosinality/vq-vae-2-pytorch VQ-VAE state dict: expected tensors such as "
            f"{_listing(list(_ANCHOR_KEYS))}, missing {_listing(missing)}; found {_modules(state_dict)}.{hint}"
        )
    embed = state_dict["quantize_t.embed"]
    encoder_in, encoder_top = state_dict["enc_b.blocks.0.weight"], state_dict["enc_t.blocks.0.weight"]
    if embed.dim() != 2 or encoder_in.dim() != 4 or encoder_top.dim() != 4:
        raise CheckpointError(
            "not a rosinality VQ-VAE state dict: expected quantize_t.embed of shape (embed_dim, n_embed) and 4-D "
            f"conv weights, got quantize_t.embed {tuple(embed.shape)}, enc_b.blocks.0.weight "
            f"{tuple(encoder_in.shape)}, enc_t.blocks.0.weight {tuple(encoder_top.shape)}"
        )
    n_res_block = 0
    while f"enc_b.blocks.{5 + n_res_block}.conv.1.weight" in state_dict:
        n_res_block += 1
    first_residual = state_dict.get("enc_b.blocks.5.conv.1.weight")
    args = RosinalityVQVAEArgs(
        in_channel=encoder_in.shape[1],
        channel=encoder_top.shape[1],
        n_res_block=n_res_block,
        n_res_channel=first_residual.shape[0] if first_residual is not None else None,
        embed_dim=embed.shape[0],
        n_embed=embed.shape[1],
    )

    expected = {theirs: shape for theirs, (_, shape) in key_table(args).items()}
    problems = [
        f"{key}: shape {tuple(state_dict[key].shape)}, expected {shape}"
        for key, shape in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    ]
    absent = [key for key in expected if key not in state_dict]
    extra = [key for key in state_dict if key not in expected]
    if absent:
        problems.append(f"missing: {_listing(absent)}")
    if extra:
        problems.append(f"not part of that network: {_listing(extra)}")
    if problems:
        raise CheckpointError(
            f"not a rosinality VQ-VAE state dict: its shapes read as VQVAE({_call(args)}), whose {len(expected)} "
            f"tensors this file does not match:\n  " + "\n  ".join(problems)
        )
    not_float = [key for key, value in state_dict.items() if not value.is_floating_point()]
    if not_float:
        raise CheckpointError(f"not a rosinality VQ-VAE state dict: non-float tensors {_listing(not_float)}")
    return args


def _call(args: RosinalityVQVAEArgs) -> str:
    return ", ".join(f"{name}={value}" for name, value in args.as_dict().items())


def key_table(args: RosinalityVQVAEArgs) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Their tensor name -> (our tensor name, their shape), for every tensor of `VQVAE(**args)`.

    Their modules are `nn.Sequential`s; the indices skip the ReLUs. Encoders: bottom (stride 4) conv 0, 2, 4, then
    residual blocks from 5; top (stride 2) conv 0, 2, residual blocks from 3. Decoders: conv 0, residual blocks
    from 1, a ReLU, then the transposed convs (two, around a ReLU, for the stride-4 image decoder).
    """
    n, channel, half = args.n_res_block, args.channel, args.channel // 2
    residual, dim, codes, image = args.n_res_channel, args.embed_dim, args.n_embed, args.in_channel
    table: dict[str, tuple[str, tuple[int, ...]]] = {}

    def conv(theirs: str, ours: str, out_channels: int, in_channels: int, kernel: int) -> None:
        table[f"{theirs}.weight"] = (f"{ours}.weight", (out_channels, in_channels, kernel, kernel))
        table[f"{theirs}.bias"] = (f"{ours}.bias", (out_channels,))

    def conv_transpose(theirs: str, ours: str, in_channels: int, out_channels: int) -> None:
        table[f"{theirs}.weight"] = (f"{ours}.weight", (in_channels, out_channels, 4, 4))
        table[f"{theirs}.bias"] = (f"{ours}.bias", (out_channels,))

    def residual_blocks(theirs: str, first: int, ours: str) -> None:
        for i in range(n):
            conv(f"{theirs}.blocks.{first + i}.conv.1", f"{ours}.residual.blocks.{i}.conv1", residual, channel, 3)
            conv(f"{theirs}.blocks.{first + i}.conv.3", f"{ours}.residual.blocks.{i}.conv2", channel, residual, 1)

    def quantizer(theirs: str, ours: str) -> None:
        table[f"{theirs}.embed"] = (f"{ours}.codebook", (dim, codes))
        table[f"{theirs}.cluster_size"] = (f"{ours}.ema_count", (codes,))
        table[f"{theirs}.embed_avg"] = (f"{ours}.ema_sum", (dim, codes))

    # Bottom encoder (our level 1) reads the image; top encoder (level 0) reads the bottom encoder's features.
    conv("enc_b.blocks.0", "encoders.1.downsample.0", half, image, 4)
    conv("enc_b.blocks.2", "encoders.1.downsample.2", channel, half, 4)
    conv("enc_b.blocks.4", "encoders.1.downsample.4", channel, channel, 3)
    residual_blocks("enc_b", 5, "encoders.1")
    conv("enc_t.blocks.0", "encoders.0.downsample.0", half, channel, 4)
    conv("enc_t.blocks.2", "encoders.0.downsample.2", channel, half, 3)
    residual_blocks("enc_t", 3, "encoders.0")
    conv("quantize_conv_t", "pre_quantizations.0", dim, channel, 1)
    quantizer("quantize_t", "quantizers.0")
    # The top codes decoded to the bottom resolution: the bottom level's conditioning.
    conv("dec_t.blocks.0", "conditioning_decoders.1.conv_in", channel, dim, 3)
    residual_blocks("dec_t", 1, "conditioning_decoders.1")
    conv_transpose(f"dec_t.blocks.{n + 2}", "conditioning_decoders.1.upsample.0", channel, dim)
    conv("quantize_conv_b", "pre_quantizations.1", dim, dim + channel, 1)
    quantizer("quantize_b", "quantizers.1")
    conv_transpose("upsample_t", "upsamplers.0.0", dim, dim)
    conv("dec.blocks.0", "decoder.conv_in", channel, 2 * dim, 3)
    residual_blocks("dec", 1, "decoder")
    conv_transpose(f"dec.blocks.{n + 2}", "decoder.upsample.0", channel, half)
    conv_transpose(f"dec.blocks.{n + 4}", "decoder.upsample.2", half, image)
    return table


# ---------------------------------------------------------------------------------------------------- conversion
def convert_rosinality_vqvae(state_dict: dict[str, torch.Tensor], image_size: int = 256) -> VQVAE2Model:
    """A [`VQVAE2Model`] (eval mode, float32) computing what their `VQVAE` with this state dict computes: the same
    codes from `encode` as their `encode`'s `id_t, id_b`, and `decode(codes)` equal to their `decode_code`.

    Args:
        state_dict: their `VQVAE.state_dict()` (see [`load_rosinality_checkpoint`]).
        image_size: the image side the model is meant for (their FFHQ model: 256); it sets the image processor's
            size and the config's nominal latent sizes. The network itself takes any multiple of 8.
    """
    args = rosinality_vqvae_args(state_dict)
    model = VQVAE2Model(args.to_config(image_size))
    ours = model.state_dict()
    converted: dict[str, torch.Tensor] = {}
    for theirs, (name, _) in key_table(args).items():
        tensor = state_dict[theirs].detach().to(torch.float32)
        if theirs.endswith((".embed", ".embed_avg")):
            tensor = tensor.t()  # (D, K) -> (K, D)
        elif theirs == "quantize_conv_b.weight":
            # Their input is cat([decoded top (D), features (channel)]), ours cat([features, decoded top]).
            tensor = torch.cat([tensor[:, args.embed_dim :], tensor[:, : args.embed_dim]], dim=1)
        if tensor.shape != ours[name].shape:
            raise RuntimeError(f"conversion bug: {theirs} -> {name} gives {tuple(tensor.shape)}, model has "
                               f"{tuple(ours[name].shape)}")  # fmt: skip
        converted[name] = tensor.contiguous()
    unfilled = [name for name in ours if name not in converted and name.rsplit(".", 1)[-1] not in _BOOKKEEPING_BUFFERS]
    if unfilled:
        raise RuntimeError(f"conversion bug: no source tensor for {_listing(unfilled)}")
    model.load_state_dict({**ours, **converted}, strict=True)
    return model.eval()


def rosinality_image_processor(config: VQVAE2Config) -> VQVAEImageProcessor:
    """The preprocessing of their scripts (torchvision `Resize(size)` of the shortest edge, bilinear, then
    `CenterCrop(size)` and `Normalize(0.5, 0.5)` to [-1, 1]) as a [`VQVAEImageProcessor`]."""
    return VQVAEImageProcessor.for_model_size(
        config.image_size, num_channels=config.in_channels, resample=PILImageResampling.BILINEAR
    )


# ----------------------------------------------------------------------------------------------------- repo folder
def write_rosinality_repo(
    checkpoint: str | os.PathLike,
    repo_dir: str | os.PathLike,
    *,
    image_size: int = 256,
    repo_id: str | None = None,
    license: str = "other",
    example_image: str | os.PathLike | None = None,
) -> Path:
    """Converts a checkpoint file into a Hub-ready folder: `model.safetensors` and config (with the modelling code
    for `trust_remote_code`), the image processor's config, the image pipelines in config.json, and a model card.

    Args:
        checkpoint: their VQ-VAE checkpoint (`torch.save(model.state_dict(), ...)`).
        repo_dir: the folder to write; it must not exist or be empty.
        image_size: the image side the model is meant for (256 for their FFHQ model).
        repo_id: the Hub id the card's snippets load; defaults to `your-name/<folder name>`.
        license: a Hub license id for the card; "other" when you do not know the weights' license.
        example_image: an image for the card: its reconstruction and PSNR go in `images/`.
    """
    import hashlib
    import json

    import transformers
    from huggingface_hub import ModelCard, ModelCardData
    from PIL import Image

    from .. import __version__

    checkpoint, repo_dir = Path(checkpoint), Path(repo_dir)
    if repo_dir.exists() and any(repo_dir.iterdir()):
        raise FileExistsError(f"{repo_dir} exists and is not empty; choose a new output folder")
    state_dict = load_rosinality_checkpoint(checkpoint)
    args = rosinality_vqvae_args(state_dict)
    model = convert_rosinality_vqvae(state_dict, image_size=image_size)
    processor = rosinality_image_processor(model.config)

    # Imported here, not at the top: the packaging side is only needed once a checkpoint has converted.
    from ..hub import REPO_TASKS, add_pipelines
    from ..metrics.functional import psnr

    repo_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(repo_dir)
    processor.save_pretrained(repo_dir)
    add_pipelines(repo_dir, REPO_TASKS["vqvae2"])

    example = None
    if example_image is not None:
        (repo_dir / "images").mkdir(exist_ok=True)
        pixels = processor(Image.open(example_image), return_tensors="pt").pixel_values
        with torch.no_grad():
            reconstruction = model.decode(model.encode(pixels)).clamp(-1, 1)
        processor.postprocess(pixels)[0].save(repo_dir / "images" / "example_input.png")
        processor.postprocess(reconstruction)[0].save(repo_dir / "images" / "example_reconstruction.png")
        example = {
            "description": f"The image `{Path(example_image).name}`",
            "input": "images/example_input.png",
            "reconstruction": "images/example_reconstruction.png",
            "psnr": f"{psnr(reconstruction, pixels, data_range=2.0):.2f}",
        }

    config = model.config
    levels = [
        {"name": name, "side": image_size // factor, "num_embeddings": k, "embedding_dim": d}
        for name, factor, k, d in zip(
            ("top", "bottom"), config.downsample_factors, config.level_num_embeddings, config.level_embedding_dims
        )
    ]
    architecture = {
        key: value
        for key, value in sorted(json.loads((repo_dir / "config.json").read_text()).items())
        if key not in {"architectures", "auto_map", "custom_pipelines", "dtype", "transformers_version"}
    }
    repo_id = repo_id or f"your-name/{repo_dir.resolve().name}"
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=REPO_TASKS["vqvae2"][0],
        tags=["hf_vqvae", "vq-vae", "vq-vae-2", "vector-quantization", "custom_code", "rosinality", "converted"],
        license=license,
        model_name=repo_id.split("/")[-1],
    )
    card = ModelCard.from_template(
        card_data,
        template_path=str(Path(__file__).resolve().parents[1] / "model_cards" / "rosinality_vqvae2.md"),
        repo_id=repo_id,
        model_name=repo_id.split("/")[-1],
        license=license,
        source={
            "file_name": checkpoint.name,
            "sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
            "url": SOURCE_URL,
            "call": _call(args),
        },
        num_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        vq=config,
        levels=levels,
        vq_config_json=json.dumps(architecture, indent=2),
        example=example,
        hf_vqvae_version=__version__,
        transformers_version=transformers.__version__,
    )
    card.save(repo_dir / "README.md")
    return repo_dir


__all__ = [
    "CheckpointError",
    "RosinalityVQVAEArgs",
    "convert_rosinality_vqvae",
    "key_table",
    "load_rosinality_checkpoint",
    "rosinality_image_processor",
    "rosinality_vqvae_args",
    "write_rosinality_repo",
]
