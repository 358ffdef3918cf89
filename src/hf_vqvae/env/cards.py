"""Model cards of the environment models, from the Jinja templates `hf_vqvae/model_cards/video.md` and
`two_stage.md` through `huggingface_hub.ModelCard.from_template`, filled with measured held-out results only."""

from __future__ import annotations

from importlib import resources
from typing import Any

from huggingface_hub import ModelCard, ModelCardData

from ..space.build import DEMO_APPS, demo_card_section


def _template(name: str) -> str:
    return str(resources.files("hf_vqvae") / "model_cards" / name)


def _card_data(model_name: str, tags: list[str]) -> ModelCardData:
    return ModelCardData(
        license="apache-2.0",
        library_name="transformers",
        tags=["vq-vae", "vizdoom", "hf_vqvae", *tags],
        model_name=model_name,
    )


def _version() -> str:
    import hf_vqvae

    return hf_vqvae.__version__


def render_video_card(
    model, metrics: dict[str, Any], data_info: dict[str, Any], repo_id: str, rollout_gif: str, command: str
) -> ModelCard:
    """The card of a `VQVideoModel` with its prediction metrics (`env.metrics.prediction_metrics` output without
    the rollouts) and the relative path of its rollout GIF."""
    prediction = metrics["prediction"]
    consistency = prediction.get("action_consistency", {})
    stage1 = metrics.get("stage1", {})
    rows = [
        {"name": "Stage-1 PSNR (dB)", "value": f"{stage1.get('psnr', float('nan')):.2f}"},
        {"name": "Stage-1 SSIM", "value": f"{stage1.get('ssim', float('nan')):.3f}"},
        {"name": "Dynamics NLL (bits per code, teacher forcing)", "value": f"{metrics['dynamics_bits_per_code']:.3f}"},
    ]
    if consistency:
        rows += [
            {
                "name": "Action recovered from generated pairs",
                "value": f"{consistency['generated_pairs_accuracy']:.3f}",
            },
            {"name": "Action recovered from real pairs", "value": f"{consistency['real_pairs_accuracy']:.3f}"},
            {"name": "Most frequent action (chance)", "value": f"{consistency['chance']:.3f}"},
        ]
        if "generated_step1_accuracy" in consistency:
            step1 = f"{consistency['generated_step1_accuracy']:.3f} / {consistency['real_step1_accuracy']:.3f}"
            rows += [{"name": "Action recovered at step 1, generated / real", "value": step1}]
    per_step_rows = []
    if "generated_accuracy_per_step" in consistency:
        per_step_rows += [
            {"label": "action recovered, generated", "values": consistency["generated_accuracy_per_step"]},
            {"label": "action recovered, real", "values": consistency["real_accuracy_per_step"]},
        ]
    for kind in ("generated", "real"):
        if f"{kind}_change_per_step" in prediction:
            percent = [round(100 * value, 1) for value in prediction[f"{kind}_change_per_step"]]
            per_step_rows.append({"label": f"view change, {kind} (%)", "values": percent})
    config = model.config
    context = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "parallel": config.teacher_forcing_noise == 1.0,
        "guidance_scale": f"{config.guidance_scale:g}" if config.guidance_scale not in (None, 1.0) else None,
        "action_dropout": f"{config.dynamics_config.class_dropout:.0%}",
        "sweep_rows": [_sweep_row(row) for row in metrics.get("guidance_sweep", [])],
        "scenario": data_info["scenario"],
        "image_size": config.image_size,
        "latent": config.latent_shape[0],
        "num_embeddings": config.vq_config.num_embeddings,
        "context_frames": config.context_frames,
        "train_frames": data_info["splits"]["train"],
        "action_names": [config.id2label[i] for i in range(config.num_actions)],
        "num_parameters": f"{model.num_parameters():,}",
        "hf_vqvae_version": _version(),
        "rollout_gif": rollout_gif,
        "horizon": prediction["horizon"],
        "num_rollouts": prediction["num_rollouts"],
        "metric_rows": rows,
        "steps": list(range(1, prediction["horizon"] + 1)),
        "psnr_per_step": prediction["psnr_per_step"],
        "copy_last_psnr_per_step": prediction["copy_last_psnr_per_step"],
        "copy_last_codes_psnr_per_step": prediction["copy_last_codes_psnr_per_step"],
        "reconstruction_psnr_per_step": prediction["reconstruction_psnr_per_step"],
        "per_step_rows": per_step_rows,
        "command": command,
        "demo_section": demo_card_section(repo_id, DEMO_APPS["vq_video"]),
    }
    data = _card_data(context["model_name"], ["video-prediction", "pixelsnail"])
    return ModelCard.from_template(data, template_path=_template("video.md"), **context)


def _sweep_row(row: dict[str, Any]) -> dict[str, str]:
    """One row of `env.metrics.guidance_sweep` as the card prints it."""
    return {
        "scale": f"{row['guidance_scale']:g}",
        "psnr": f"{row['psnr_short']:.2f}",
        "copy_psnr": f"{row['copy_psnr_short']:.2f}",
        "beats": f"{row['beats_copy_step1']:.2f}",
        "step1": f"{row['action_step1']:.2f}",
        "short": f"{row['action_short']:.3f}",
        "all": f"{row['action_all']:.3f}",
        "change": f"{100 * row['change_step1']:.1f} / {100 * row['change_last']:.1f}",
        "real_action_all": f"{row['real_action_all']:.3f}",
        "chance": f"{row['chance']:.3f}",
        "real_change": f"{100 * row['real_change']:.1f}",
    }


def render_two_stage_card(
    model, metrics: dict[str, Any], data_info: dict[str, Any], repo_id: str, samples_png: str, command: str
) -> ModelCard:
    """The card of a `VQTwoStageModel` with its stage-1, stage-2 and bits-per-frame metrics."""
    stage1, stage2, bits = metrics["stage1"], metrics["stage2"], metrics["bits"]
    rows = [
        {"name": "Stage-1 PSNR (dB)", "value": f"{stage1['psnr']:.2f}"},
        {"name": "Stage-1 SSIM", "value": f"{stage1['ssim']:.3f}"},
        {"name": "Stage-2 code accuracy (share of 21x21 codes recovered)", "value": f"{stage2['code_accuracy']:.3f}"},
        {"name": "Two-stage decoded PSNR vs real frames (dB)", "value": f"{stage2['psnr']:.2f}"},
        {"name": "Two-stage decoded PSNR vs stage-1 reconstruction (dB)",
         "value": f"{stage2['psnr_vs_stage1_reconstruction']:.2f}"},
        {"name": "Bits per frame (uniform over the top codes)", "value": f"{bits['uniform_bits_per_frame']:.1f}"},
        {"name": "Bits per frame (prior NLL, held out)", "value": f"{bits['prior_bits_per_frame']:.1f}"},
    ]  # fmt: skip
    config = model.config
    context = {
        "model_name": repo_id.split("/")[-1],
        "repo_id": repo_id,
        "scenario": data_info["scenario"],
        "image_size": config.image_size,
        "latent": config.stage1_config.latent_size,
        "stage1_k": config.stage1_config.num_embeddings,
        "stage2_k": config.stage2_config.num_embeddings,
        "top_shape": list(config.top_shape),
        "bits_per_frame": f"{bits['uniform_bits_per_frame']:.0f}",
        "num_parameters": f"{model.num_parameters():,}",
        "hf_vqvae_version": _version(),
        "samples_png": samples_png,
        "metric_rows": rows,
        "command": command,
        "demo_section": demo_card_section(repo_id, DEMO_APPS["vq_two_stage"]),
    }
    data = _card_data(context["model_name"], ["unconditional-image-generation", "two-stage"])
    return ModelCard.from_template(data, template_path=_template("two_stage.md"), **context)


__all__ = ["render_two_stage_card", "render_video_card"]
