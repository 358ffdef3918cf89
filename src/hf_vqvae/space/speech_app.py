"""A web demo of an hf_vqvae speech generation bundle (an audio VQ-VAE and a 1-D PixelSNAIL prior over its codes),
written by hf_vqvae into its Hub-ready folders and Spaces as `app.py`.

Choose a speaker (for a speaker-conditional prior), a temperature, top-k and a seed, and hear a clip: the prior
samples a code sequence, and the WaveNet decoder turns it into speech in that speaker's voice. The same seed gives
the same clip. Sampling runs one code, then one sample, at a time (tens of times slower than real time on a CPU),
so a progress bar follows it.

    python app.py                                  # the bundle in this folder
    python app.py --model org/name --port 7860     # a Hub repo (or any folder); HF_VQVAE_MODEL=org/name also works

Everything goes through the bundle's own `transformers` pipeline (`pipeline_audio_generation.py`, loaded with
`trust_remote_code=True`): gradio, transformers, torch, numpy and Pillow are all it needs.
"""

from __future__ import annotations

import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
from demo_common import (  # noqa: E402
    InputError,
    as_pcm16,
    error_result,
    positive_number,
    sampling_controls,
    serve,
    served_name,
    whole_number,
)
from transformers import AutoConfig, pipeline  # noqa: E402

TASK = "unconditional-audio-generation"


class SpeechDemo:
    """The bundle's speech generation pipeline and the page's action."""

    def __init__(self, source: str, device: str) -> None:
        self.source = source
        config = AutoConfig.from_pretrained(source, trust_remote_code=True)
        if TASK not in (getattr(config, "custom_pipelines", None) or {}):
            raise SystemExit(f"{source} ({config.model_type}) serves no {TASK} pipeline")
        self.generator = pipeline(TASK, model=source, trust_remote_code=True, device=device)
        self.config = self.generator.model.config
        self.conditional = any(prior.num_classes for prior in self.config.prior_configs)
        labels = getattr(self.config, "id2label", None) or {}
        self.speakers = [labels[index] for index in sorted(labels)] if self.conditional else []

    def speak(self, speaker, temperature, top_k, seed, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        """Controls -> (the clip, status)."""
        try:
            if self.speakers and speaker not in self.speakers:
                raise InputError(f"Choose a speaker: one of {', '.join(self.speakers)}.")
            temperature = positive_number(temperature, "The temperature")
            top_k = whole_number(top_k, "Top-k", 0) or None
            seed = whole_number(seed, "The seed", 0, 2**63 - 1)
        except InputError as error:
            return error_result(error, (None,))
        progress(0, desc="sampling")
        # The prior's and the WaveNet's sampling loops are tqdm loops: gradio's tracker shows them as progress.
        speaker_kwargs = {"speaker": speaker} if self.speakers else {}
        (clip,) = self.generator(1, seed=seed, temperature=temperature, top_k=top_k, **speaker_kwargs)
        seconds = len(clip["audio"]) / clip["sampling_rate"]
        voice = f" as {speaker}" if self.speakers else ""
        status = (
            f"{seconds:.2f} s at {clip['sampling_rate']} Hz{voice}; seed {seed}, temperature {temperature:g}, "
            f"top-k {top_k or 'all'}."
        )
        return (clip["sampling_rate"], as_pcm16(clip["audio"])), status


def build_demo(demo: SpeechDemo) -> gr.Blocks:
    title = "Speech generation demo"
    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}\nServing {served_name(demo.source)} with hf_vqvae's pipeline: a PixelSNAIL prior samples "
            "codes and the WaveNet decoder speaks them"
            + (f", in the voice of one of {len(demo.speakers)} speakers." if demo.speakers else ".")
            + " Sampling runs one step at a time: a clip takes a while on a CPU."
        )
        with gr.Row():
            with gr.Column():
                speaker = gr.Dropdown(
                    demo.speakers, value=demo.speakers[0] if demo.speakers else None, visible=bool(demo.speakers),
                    label="Speaker", elem_id="speaker",
                )  # fmt: skip
                temperature, top_k, seed = sampling_controls(max_temperature=1.5)
                button = gr.Button("Speak", variant="primary", elem_id="speak-button")
            with gr.Column():
                clip = gr.Audio(label="Generated speech", interactive=False, format="wav", elem_id="clip")
                status = gr.Markdown(elem_id="speech-status")
        button.click(demo.speak, inputs=[speaker, temperature, top_k, seed], outputs=[clip, status])
    return page


def main(argv: list[str] | None = None) -> None:
    serve(__doc__, SpeechDemo, build_demo, argv)


if __name__ == "__main__":
    main()
