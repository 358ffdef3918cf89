"""A web demo of an hf_vqvae audio VQ-VAE (the VQ-VAE paper's speech model), written by hf_vqvae into its Hub-ready
folders and Spaces as `app.py`.

Upload a recording (WAV, FLAC or Ogg) or record one, choose the speaker to decode with, and get back:
* the audio the WaveNet decoder samples from the clip's codes: a **reconstruction** when the chosen speaker is the
  one in the clip, the paper's **voice conversion** when it is another one;
* the code sequence (250 codes per second) pictured, one colour per codebook entry, in rows read left to right;
* the clip as the model hears it (16 kHz mono), to compare.

Decoding samples the waveform one sample at a time (tens of times slower than real time on a CPU): clips are cut to
their first $HF_VQVAE_MAX_SECONDS seconds (default 4), and a progress bar counts the samples.

    python app.py                                  # the model in this folder
    python app.py --model org/name --port 7860     # a Hub repo (or any folder); HF_VQVAE_MODEL=org/name also works

Everything goes through the model's own `transformers` pipelines (`pipeline_audio_vqvae.py`, loaded with
`trust_remote_code=True`): gradio, transformers, torch, numpy, soundfile and Pillow are all it needs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import soundfile  # noqa: E402
import torch  # noqa: E402
from demo_common import (  # noqa: E402
    InputError,
    as_pcm16,
    code_map_picture,
    error_result,
    examples_in,
    positive_number,
    sampling_controls,
    serve,
    served_name,
    upload_path,
    whole_number,
)
from PIL import Image  # noqa: E402
from transformers import AutoConfig, pipeline  # noqa: E402

MAX_SECONDS = float(os.environ.get("HF_VQVAE_MAX_SECONDS", 4.0))
CODES_PER_ROW = 50
CODE_CELL = 12  # pixels per code in the picture of the sequence
PAD_COLOUR = (255, 255, 255)  # after the last code of the last row


def read_audio(upload: dict | str | None) -> tuple[np.ndarray, int, str]:
    """The uploaded file's samples `(T,)` or `(T, C)` float32, its rate, and a note when it was cut; or an
    `InputError` naming what is wrong with it."""
    path = upload_path(upload, "or record a clip")
    try:
        samples, rate = soundfile.read(path, dtype="float32", always_2d=False)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError):
        raise InputError(
            f"{path.name} is not an audio file this demo can read. Upload a WAV, FLAC or Ogg recording."
        ) from None
    if samples.shape[0] == 0:
        raise InputError(f"{path.name} holds no samples: record or upload a clip of some speech.")
    if not np.isfinite(samples).all():
        raise InputError(f"{path.name} holds NaN or infinite samples.")
    note = ""
    limit = int(MAX_SECONDS * rate)
    if samples.shape[0] > limit:
        note = f" (its first {MAX_SECONDS:g} s of {samples.shape[0] / rate:.1f} s: decoding is sample by sample)"
        samples = samples[:limit]
    return samples, int(rate), note


def code_sequence_picture(codes: torch.Tensor, num_codes: int, per_row: int = CODES_PER_ROW) -> Image.Image:
    """Codes `(T,)` as a picture: `per_row` codes a row (read left to right, then down), each a square of
    `CODE_CELL` pixels in its code's colour; the last row is padded with white."""
    codes = codes.cpu().long()
    rows = max(1, -(-len(codes) // per_row))
    grid = torch.full((rows * per_row,), -1, dtype=torch.long)
    grid[: len(codes)] = codes
    picture = np.asarray(code_map_picture(grid.clamp_min(0).view(rows, per_row), num_codes, 0))
    picture = picture.copy()
    picture.reshape(-1, 3)[(grid.view(rows, per_row) < 0).flatten().numpy()] = PAD_COLOUR
    image = Image.fromarray(picture)
    return image.resize((per_row * CODE_CELL, rows * CODE_CELL), Image.Resampling.NEAREST)


class AudioDemo:
    """The model's audio pipelines (sharing one loaded model) and the page's action."""

    def __init__(self, source: str, device: str) -> None:
        self.source = source
        config = AutoConfig.from_pretrained(source, trust_remote_code=True)
        if "audio-to-audio" not in (getattr(config, "custom_pipelines", None) or {}):
            raise SystemExit(f"{source} ({config.model_type}) serves no audio-to-audio pipeline")
        self.converter = pipeline("audio-to-audio", model=source, trust_remote_code=True, device=device)
        pipelines = sys.modules[type(self.converter).__module__]
        self.extractor = pipelines.AudioVQVAEFeatureExtractionPipeline(
            task="feature-extraction", model=self.converter.model, feature_extractor=self.converter.feature_extractor
        )
        self.model = self.converter.model
        self.config = self.model.config
        self.rate = self.config.sampling_rate
        names = list(getattr(self.config, "speaker_names", None) or [])
        self.speakers = names or [str(index) for index in range(self.config.num_speakers or 0)]

    def convert(self, upload, speaker, temperature, seed, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
        """Upload and controls -> (decoded audio, the input as the model hears it, code picture, status)."""
        try:
            samples, rate, note = read_audio(upload)
            temperature = positive_number(temperature, "The temperature")
            seed = whole_number(seed, "The seed", 0, 2**63 - 1)
            if self.speakers and speaker not in self.speakers:
                raise InputError(f"Choose a speaker: one of {', '.join(self.speakers)}.")
        except InputError as error:
            return error_result(error, (None, None, None))
        audio = {"array": samples, "sampling_rate": rate}
        heard = self.converter.feature_extractor(audio, return_tensors="np").input_values[0]
        codes = self.extractor(audio, return_tensors=True)["codes"]
        progress(0, desc="WaveNet")
        # The WaveNet's sampling loop is a tqdm loop: gradio's tracker turns it into the page's progress bar.
        speaker_kwargs = {"target_speaker": speaker} if self.speakers else {}
        output = self.converter(audio, temperature=temperature, seed=seed, **speaker_kwargs)
        picture = code_sequence_picture(codes, self.config.num_embeddings)
        seconds = len(output["audio"]) / output["sampling_rate"]
        decoded = f"as {speaker}" if self.speakers else "decoded"
        status = (
            f"{seconds:.2f} s at {output['sampling_rate']} Hz{note}, {len(codes)} codes "
            f"({int(codes.unique().numel())} of {self.config.num_embeddings} entries used), {decoded}; "
            f"seed {seed}, temperature {temperature:g}."
        )
        return (
            (output["sampling_rate"], as_pcm16(output["audio"])),
            (self.rate, as_pcm16(heard)),
            picture,
            status,
        )


def build_demo(demo: AudioDemo) -> gr.Blocks:
    title = "Audio VQ-VAE demo"
    with gr.Blocks(title=title) as page:
        gr.Markdown(
            f"# {title}\nServing {served_name(demo.source)} ({demo.rate} Hz, {demo.config.num_embeddings} codes, "
            f"{len(demo.speakers)} speakers) with hf_vqvae's pipelines. Pick the speaker of the clip to reconstruct "
            "it, or another speaker to convert the voice. Decoding runs one sample at a time: clips are cut to "
            f"{MAX_SECONDS:g} s."
        )
        with gr.Row():
            upload = gr.Audio(
                sources=["upload", "microphone"], type="filepath", label="Upload or record speech", elem_id="upload"
            )
            with gr.Column():
                speaker = gr.Dropdown(
                    demo.speakers, value=demo.speakers[0] if demo.speakers else None, visible=bool(demo.speakers),
                    label="Decode as speaker (the clip's own: reconstruction; another: voice conversion)",
                    elem_id="speaker",
                )  # fmt: skip
                temperature, _, seed = sampling_controls(max_temperature=1.5, with_top_k=False)
                button = gr.Button("Reconstruct / convert", variant="primary", elem_id="convert-button")
        status = gr.Markdown(elem_id="audio-status")
        with gr.Row():
            decoded = gr.Audio(label="Decoded", interactive=False, format="wav", elem_id="decoded")
            heard = gr.Audio(label="Input, as the model hears it", interactive=False, format="wav", elem_id="heard")
        picture = gr.Image(
            label=f"Codes ({CODES_PER_ROW} a row, one colour per codebook entry)", interactive=False, format="png",
            elem_id="codes",
        )  # fmt: skip
        examples = examples_in(demo.source, "examples/*_original.wav")
        if examples:
            gr.Examples([[str(path)] for path in examples], inputs=[upload])
        # preprocess=False: the file's record undecoded, so that an unreadable file gets `read_audio`'s message.
        button.click(
            demo.convert,
            inputs=[upload, speaker, temperature, seed],
            outputs=[decoded, heard, picture, status],
            preprocess=False,
        )
    return page


def main(argv: list[str] | None = None) -> None:
    serve(__doc__, AudioDemo, build_demo, argv)


if __name__ == "__main__":
    main()
