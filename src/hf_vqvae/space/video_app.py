"""A web demo of an hf_vqvae action-conditioned video model (an environment model: a frame VQ-VAE and a dynamics
prior over the next frame's codes), written by hf_vqvae into its Hub-ready folders and Spaces as `app.py`.

* **Prediction:** upload a first frame (or take the example frame saved in the folder), choose a sequence of actions
  (type them, or press the action buttons), and get the frames the model predicts, as an animated GIF (the first
  frame, then one frame per action) and as a gallery; with seed, temperature and top-k controls, guidance on the
  action (for a model trained with some actions dropped) and a progress bar.
* **Reconstruction:** a frame through the frame VQ-VAE: its reconstruction, its code map and the PSNR.

    python app.py                                  # the model in this folder
    python app.py --model org/name --port 7860     # a Hub repo (or any folder); HF_VQVAE_MODEL=org/name also works

Everything goes through the model's own `transformers` pipelines (`pipeline_video.py`, `pipeline_vqvae.py`, loaded
with `trust_remote_code=True`): gradio, transformers, torch, numpy and Pillow are all it needs.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
from demo_common import (  # noqa: E402
    DISPLAY_SIZE,
    ImageReconstruction,
    InputError,
    enlarge,
    error_result,
    examples_in,
    positive_number,
    read_upload,
    sampling_controls,
    sampling_progress,
    serve,
    served_name,
    whole_number,
)
from transformers import AutoConfig  # noqa: E402
from transformers.dynamic_module_utils import get_class_from_dynamic_module  # noqa: E402

VIDEO_TASK = "video-prediction"
MAX_STEPS = int(os.environ.get("HF_VQVAE_MAX_STEPS", 32))
GIF_FRAME_MS = 250
# "TURN_LEFT x3", "TURN_LEFT*3" or "2 x3": an action (name or id) and how many times in a row.
_ACTION = re.compile(r"^\s*(?P<action>[^\s*x][^*]*?)\s*(?:[x*]\s*(?P<count>\d+))?\s*$")


def parse_actions(text: str | None, names: list[str]) -> list[str]:
    """Comma-separated actions (names or ids, each optionally `x N` times) -> action names; `InputError` on
    anything else."""
    known = ", ".join(names)
    items = [item for item in (text or "").split(",") if item.strip()]
    if not items:
        raise InputError(f"Choose at least one action (type them, comma-separated, or press the buttons): {known}.")
    actions = []
    for item in items:
        match = _ACTION.match(item)
        action = match.group("action") if match else item.strip()
        count = int(match.group("count") or 1) if match else 1
        if action.isdigit() and int(action) < len(names):
            action = names[int(action)]
        upper = {name.upper(): name for name in names}
        if action.upper() not in upper:
            raise InputError(
                f"Unknown action {item.strip()!r}; this model knows {known} (or their ids 0-{len(names) - 1})."
            )
        actions += [upper[action.upper()]] * count
    if len(actions) > MAX_STEPS:
        raise InputError(f"{len(actions)} actions: this demo predicts at most {MAX_STEPS} frames at a time.")
    return actions


class VideoDemo(ImageReconstruction):
    """The model's video-prediction pipeline and its image pipelines (for the frame VQ-VAE), sharing one model."""

    def __init__(self, source: str, device: str) -> None:
        self.source = source
        config = AutoConfig.from_pretrained(source, trust_remote_code=True)
        if VIDEO_TASK not in (getattr(config, "custom_pipelines", None) or {}):
            raise SystemExit(f"{source} ({config.model_type}) serves no {VIDEO_TASK} pipeline")
        super().__init__(source, device)
        # The video pipeline's class from the model's own code, over the model already loaded (one copy of it).
        video_pipeline = get_class_from_dynamic_module(config.custom_pipelines[VIDEO_TASK]["impl"], source)
        self.predictor = video_pipeline(model=self.model, task=VIDEO_TASK)
        id2label = self.model.config.id2label
        self.actions = [
            id2label.get(index, id2label.get(str(index))) for index in range(self.model.config.num_actions)
        ]
        # Guidance on the action needs a dynamics prior trained with a null class; the default is the model's own.
        dynamics = self.model.config.dynamics_config
        self.can_guide = getattr(dynamics, "null_class_id", None) is not None
        self.guidance = getattr(self.model.config, "guidance_scale", None) or 1.0

    def predict(self, upload, actions_text, temperature, top_k, seed, guidance=1.0, progress=gr.Progress()):  # noqa: B008
        """First frame, actions and controls -> (GIF path, gallery of predicted frames, status)."""
        try:
            frame = read_upload(upload)
            actions = parse_actions(actions_text, self.actions)
            temperature = positive_number(temperature, "The temperature")
            guidance = positive_number(guidance, "The guidance on the action") if self.can_guide else 1.0
            top_k = whole_number(top_k, "Top-k", 0) or None
            seed = whole_number(seed, "The seed", 0, 2**63 - 1)
        except InputError as error:
            return error_result(error, (None, []))
        progress(0, desc="predicting frames")
        # A model that reads the last N frames gets the one uploaded frame N times, as if the view had stood still.
        context_frames = getattr(self.model.config, "context_frames", 1)
        # A model trained with teacher_forcing_noise=1 predicts each frame in one forward: progress counts frames.
        whole = getattr(self.model.config, "teacher_forcing_noise", 0.0) == 1.0
        with sampling_progress(
            [self.model.dynamics], progress, repeats=len(actions), desc="predicting frames", whole_maps=whole
        ):
            frames = self.predictor([frame] * context_frames, actions=actions, seed=seed, temperature=temperature,
                                    top_k=top_k, guidance_scale=guidance, output_type="pt")  # fmt: skip
        context = self.predictor._frame_tensor(frame)
        factor = max(1, -(-DISPLAY_SIZE // self.image_size))
        # The pipeline's own GIF writer, over frames enlarged by a whole factor (nearest neighbour).
        big = [tensor.repeat_interleave(factor, -1).repeat_interleave(factor, -2) for tensor in (frames, context)]
        gif = self.predictor.postprocess({"frames": big[0], "context": big[1]}, "gif", GIF_FRAME_MS)
        path = Path(tempfile.mkdtemp(prefix="rollout-")) / "rollout.gif"
        path.write_bytes(gif)
        images = self.predictor.postprocess({"frames": frames, "context": context}, "pil")
        gallery = [
            (enlarge(image), f"{step + 1}: {action}") for step, (image, action) in enumerate(zip(images, actions))
        ]
        status = (
            f"{len(actions)} frame(s) predicted from a {frame.width}x{frame.height} first frame at "
            f"{self.image_size}x{self.image_size}; seed {seed}, temperature {temperature:g}, top-k {top_k or 'all'}"
            + (f", guidance on the action {guidance:g}." if self.can_guide else ".")
        )
        if context_frames > 1:
            status += f" The model reads the last {context_frames} frames: the first frame stood for all of them."
        return str(path), gallery, status


def build_demo(demo: VideoDemo) -> gr.Blocks:
    title = "Action-conditioned video model demo"
    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}\nServing {served_name(demo.source)} ({demo.image_size}x{demo.image_size} frames; actions "
            f"{', '.join(demo.actions)}) with hf_vqvae's pipelines."
        )
        with gr.Tabs():
            with gr.Tab("Prediction", id="prediction"):
                with gr.Row():
                    frame = gr.Image(type="filepath", label="First frame", sources=["upload", "clipboard"],
                                     elem_id="frame")  # fmt: skip
                    rollout = gr.Image(label="Predicted video (first frame, then one per action)", interactive=False,
                                       elem_id="rollout")  # fmt: skip
                examples = examples_in(demo.source, "images/example_frame.*")
                if examples:
                    gr.Examples([[str(path)] for path in examples], inputs=[frame], label="Example first frame")
                actions = gr.Textbox(
                    value=", ".join(f"{name} x2" for name in demo.actions[:2]), elem_id="actions",
                    label=f"Actions, comma-separated, each optionally 'x N' (names or ids; at most {MAX_STEPS})",
                )  # fmt: skip
                with gr.Row():
                    for index, name in enumerate(demo.actions):
                        button = gr.Button(f"+ {name}", size="sm", elem_id=f"action-{index}")
                        button.click(lambda text, name=name: f"{text}, {name}" if (text or "").strip() else name,
                                     inputs=[actions], outputs=[actions])  # fmt: skip
                with gr.Row():
                    temperature, top_k, seed = sampling_controls()
                    guidance = gr.Number(
                        value=demo.guidance, minimum=0.1, step=0.5, visible=demo.can_guide, elem_id="guidance",
                        label="Guidance on the action (1: none; higher: the view follows the actions more)",
                    )  # fmt: skip
                predict_button = gr.Button("Predict", variant="primary", elem_id="predict-button")
                status = gr.Markdown(elem_id="prediction-status")
                gallery = gr.Gallery(label="Predicted frames", columns=8, format="png", interactive=False,
                                     elem_id="frames")  # fmt: skip
                predict_button.click(
                    demo.predict,
                    inputs=[frame, actions, temperature, top_k, seed, guidance],
                    outputs=[rollout, gallery, status],
                    preprocess=False,
                )
            with gr.Tab("Reconstruction", id="reconstruction"):
                demo.tab(examples_in(demo.source, "images/example_frame.*"), upload_label="Upload a frame")
    return page


def main(argv: list[str] | None = None) -> None:
    serve(__doc__, VideoDemo, build_demo, argv)


if __name__ == "__main__":
    main()
