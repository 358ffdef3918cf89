"""The web demo of Hub-ready folders, and their Hugging Face Space variant.

* `write_app(repo_dir)`: puts the folder's Gradio demo into it as `app.py` (with `demo_common.py`), so that
  `python app.py` in a downloaded repo runs the demo. `DEMO_APPS` says which demo serves which model type: images
  (`app.py`: VQ-VAE, VQ-VAE-2, generation bundles), speech (`audio_app.py`: the audio VQ-VAE; `speech_app.py`: a speech
  generation bundle) and environments (`video_app.py`: the action-conditioned video model).
* `build_space(repo_dir, space_dir, ...)`: a Space folder from a model folder: the model's files, `app.py`, a
  README.md holding the Space's metadata (`sdk: gradio`, `sdk_version`, `app_file`, ...), the model card as
  `model_card.md`, and a `requirements.txt` pinned to the versions the demo was tested with.
* `push_space(space_dir, space_id)`: the Space folder to the Hub in one commit, creating a Gradio Space if needed.

The Hub's serverless widgets do not run `trust_remote_code` pipelines; a Space runs the model's own pipelines.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, replace
from importlib import metadata, resources
from pathlib import Path

import yaml

from ..repo_kinds import repo_kind

logger = logging.getLogger(__name__)

APP_FILE = "app.py"
# The module every app imports its shared parts from, copied beside it.
COMMON_FILE = "demo_common.py"
REQUIREMENTS_FILE = "requirements.txt"
# The Gradio version the demo is tested with (tests/test_space_app.py drives it in a real browser); the `demo` extra
# of pyproject.toml pins the same.
GRADIO_VERSION = "6.31.0"
# What every Space installs besides gradio: the demos' imports and what loading the model needs.
SPACE_REQUIREMENTS = ("torch", "transformers", "safetensors", "huggingface_hub", "pillow", "numpy")
MODEL_CARD_FILE = "model_card.md"
MAX_SHORT_DESCRIPTION = 60  # the Hub's limit on a Space's `short_description`
_IGNORED = shutil.ignore_patterns(".*", "__pycache__", "*.pyc")


@dataclass(frozen=True)
class DemoApp:
    """One web demo: the template that becomes a folder's `app.py`, and what its Space says and installs.

    Args:
        template: the app's file in `hf_vqvae/space`.
        task: the pipeline it drives; a folder whose config.json does not register it gets no such demo.
        title: the Space's title.
        short_description: one line under the title on the Hub (at most 60 characters).
        summary: what the Space's README says the demo does.
        requirements: distributions it needs besides gradio and `SPACE_REQUIREMENTS`.
        emoji: the Space's emoji.
    """

    template: str
    task: str
    title: str
    short_description: str
    summary: str
    requirements: tuple[str, ...] = ()
    emoji: str = "🧩"

    def template_path(self) -> Path:
        """The app's source, shipped as package data."""
        return Path(str(resources.files("hf_vqvae") / "space" / self.template))


_IMAGE_SUMMARY = (
    "Upload an image to see its reconstruction, its code map(s) and the PSNR. The demo runs the model's own "
    "`transformers` pipelines (`trust_remote_code=True`)."
)
IMAGE_APP = DemoApp("app.py", "image-to-image", "VQ-VAE demo", "Reconstructs images and shows their codes",
                    _IMAGE_SUMMARY)  # fmt: skip
# The demo of each kind of repo (`repo_kinds.repo_kind`: the model type, or `vq_generation_audio` for a generation
# bundle of the speech model): the table build and write_app read, rather than branches over model classes. A
# PixelSNAIL prior alone makes code maps, not images or sound: its demo is the generation bundle that holds it. A
# speech generation bundle makes speech from nothing (a speaker and a seed), so its demo is its own.
DEMO_APPS: dict[str, DemoApp] = {
    "vqvae": IMAGE_APP,
    "vqvae2": replace(IMAGE_APP, title="VQ-VAE-2 demo"),
    "vq_generation": replace(
        IMAGE_APP, task="unconditional-image-generation", title="VQ-VAE generation demo",
        short_description="Reconstructs images and samples new ones",
        summary="Upload an image to see its reconstruction, its code map(s) and the PSNR, or sample new images "
        "(class, temperature, top-k, seed). The demo runs the model's own `transformers` pipelines "
        "(`trust_remote_code=True`).",
    ),
    # Frames through both stages and back, and samples of the prior over the top codes through both decoders.
    "vq_two_stage": replace(
        IMAGE_APP, task="unconditional-image-generation", title="Two-stage VQ-VAE demo",
        short_description="Reconstructs frames and samples new ones",
        summary="Upload a frame to see it through both stages and back (and the PSNR), or sample new frames "
        "(temperature, top-k, seed). The demo runs the model's own `transformers` pipelines "
        "(`trust_remote_code=True`).",
    ),
    "audio_vqvae": DemoApp(
        "audio_app.py", "audio-to-audio", "Audio VQ-VAE demo", "Reconstructs speech and converts voices",
        "Upload or record speech, choose a speaker, and hear the WaveNet decoder's reconstruction (the clip's own "
        "speaker) or voice conversion (another speaker), with the code sequence pictured. The demo runs the model's "
        "own `transformers` pipelines (`trust_remote_code=True`).",
        requirements=("soundfile", "soxr"), emoji="🔊",
    ),
    "vq_generation_audio": DemoApp(
        "speech_app.py", "unconditional-audio-generation", "Speech generation demo",
        "Speaks new clips in a chosen voice",
        "Choose a speaker, a temperature, top-k and a seed, and hear a clip: the PixelSNAIL prior samples codes and "
        "the WaveNet decoder speaks them in that voice, with a progress bar. The demo runs the model's own "
        "`transformers` pipeline (`trust_remote_code=True`).",
        emoji="🗣️",
    ),
    "vq_video": DemoApp(
        "video_app.py", "video-prediction", "Action-conditioned video demo",
        "Predicts frames from a first frame and actions",
        "Upload a first frame (or take the example), choose a sequence of actions and watch the frames the model "
        "predicts, as a GIF and a gallery; the Reconstruction tab shows a frame through the frame VQ-VAE. The demo "
        "runs the model's own `transformers` pipelines (`trust_remote_code=True`).",
        emoji="🎮",
    ),
}  # fmt: skip


def app_template(model_type: str = "vqvae") -> Path:
    """The source of the demo of `model_type` (default: the image demo), shipped as package data."""
    return DEMO_APPS[model_type].template_path()


def demo_app(repo_dir: str | Path) -> DemoApp | None:
    """The demo of a saved model folder: by its config.json's kind (`repo_kind`), if the folder registers the
    pipeline that demo drives; None for a folder no demo serves (a prior alone, a speech generation bundle)."""
    config_path = Path(repo_dir) / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{repo_dir} is not a saved model folder (no config.json)")
    config = json.loads(config_path.read_text())
    app = DEMO_APPS.get(repo_kind(config))
    if app is None or app.task not in (config.get("custom_pipelines") or {}):
        return None
    return app


def serves_demo(repo_dir: str | Path) -> bool:
    """Whether a demo serves the folder (see `demo_app`)."""
    return demo_app(repo_dir) is not None


def write_app(repo_dir: str | Path) -> Path | None:
    """Copies the folder's demo (its app as `app.py`, and `demo_common.py`) and the demo's pinned `requirements.txt`
    into a model folder; returns the path of `app.py`, or None for a folder no demo serves (a PixelSNAIL prior
    alone: its demo is the generation bundle that holds it)."""
    repo_dir = Path(repo_dir)
    app = demo_app(repo_dir)
    if app is None:
        logger.info(f"{repo_dir} serves no pipeline a demo drives: no {APP_FILE} written")
        return None
    target = repo_dir / APP_FILE
    shutil.copyfile(app.template_path(), target)
    shutil.copyfile(app.template_path().with_name(COMMON_FILE), repo_dir / COMMON_FILE)
    (repo_dir / REQUIREMENTS_FILE).write_text("\n".join(pinned_requirements(app)) + "\n")
    return target


def demo_card_section(repo_id: str, app: DemoApp | None = None) -> str:
    """Markdown for a model card: the folder's `app.py`, how to run it, and how to push it as a Space."""
    what = (app.summary.split(". The demo")[0] + ".") if app else "A web demo of the model."
    return "\n".join(
        [
            "## Try it in a web demo",
            "",
            f"This repo holds a ready-to-run [Gradio](https://www.gradio.app) demo, `{APP_FILE}` (with "
            f"`{COMMON_FILE}`). {what} It runs the model's own pipelines, so hf_vqvae need not be installed:",
            "",
            "```bash",
            f"hf download {repo_id} --local-dir {repo_id.split('/')[-1]} && cd {repo_id.split('/')[-1]}",
            "pip install -r requirements.txt   # gradio and the versions the demo was tested with",
            "python app.py                     # then open http://127.0.0.1:7860",
            f"python app.py --model {repo_id}   # the same app serves the Hub repo from anywhere",
            "```",
            "",
            "As a Hugging Face Space (README metadata, pinned `requirements.txt`, the model files beside the app):",
            "",
            "```bash",
            f"python scripts/push_to_hub.py <this folder> --hub_model_id {repo_id} --space   # hf_vqvae's script",
            "```",
            "",
        ]
    )


def _version(distribution: str) -> str:
    # A local build tag ("2.13.0+cpu") names no release on PyPI: pin the release itself.
    return metadata.version(distribution).split("+")[0]


def pinned_requirements(app: DemoApp = IMAGE_APP) -> list[str]:
    """requirements.txt lines of a demo: gradio at the tested version, the rest at the versions installed here (a
    distribution `app` names that is not installed here is left out: e.g. soxr, for which the audio feature
    extractor falls back to scipy)."""
    names = [*SPACE_REQUIREMENTS, *app.requirements]
    installed = []
    for name in names:
        try:
            installed.append(f"{name}=={_version(name)}")
        except metadata.PackageNotFoundError:
            logger.warning(f"{name} is not installed here: left out of requirements.txt")
    return [f"gradio=={GRADIO_VERSION}", *installed]


def _card_header(readme: Path) -> dict:
    """The YAML metadata at the top of a README.md ({} without one)."""
    if not readme.exists():
        return {}
    text = readme.read_text()
    if not text.startswith("---"):
        return {}
    return yaml.safe_load(text.split("---", 2)[1]) or {}


def _model_card_license(readme: Path) -> str | None:
    return _card_header(readme).get("license")


def space_readme(
    title: str,
    emoji: str,
    color_from: str,
    color_to: str,
    license: str | None,
    short_description: str,
    model_id: str | None,
    has_card: bool,
    summary: str = _IMAGE_SUMMARY,
) -> str:
    """README.md of a Space: the metadata the Hub reads (https://huggingface.co/docs/hub/spaces-config-reference)
    and a short body."""
    import platform

    metadata_fields = {
        "title": title,
        "emoji": emoji,
        "colorFrom": color_from,
        "colorTo": color_to,
        "sdk": "gradio",
        "sdk_version": GRADIO_VERSION,
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "app_file": APP_FILE,
        "pinned": False,
        "short_description": short_description,
    }
    if license:
        metadata_fields["license"] = license
    if model_id:
        metadata_fields["models"] = [model_id]
    body = [f"# {title}", "", summary, ""]
    if model_id:
        body += [f"Model: [{model_id}](https://huggingface.co/{model_id}).", ""]
    if has_card:
        body += [f"The model card is in [`{MODEL_CARD_FILE}`]({MODEL_CARD_FILE}).", ""]
    body += [
        "Run it on your machine:",
        "",
        "```bash",
        "pip install -r requirements.txt",
        "python app.py  # then open http://127.0.0.1:7860",
        "```",
        "",
    ]
    header = yaml.safe_dump(metadata_fields, sort_keys=False, allow_unicode=True, width=1000)
    return f"---\n{header}---\n\n" + "\n".join(body)


def build_space(
    repo_dir: str | Path,
    space_dir: str | Path,
    *,
    title: str | None = None,
    emoji: str | None = None,
    color_from: str = "indigo",
    color_to: str = "pink",
    license: str | None = None,
    model_id: str | None = None,
    short_description: str | None = None,
) -> Path:
    """A Space folder (replaced if it exists) from a Hub-ready model folder.

    Args:
        repo_dir: a folder written by `hf_vqvae.hub` (config.json, weights, code, processor config, README.md).
        space_dir: the Space folder to write.
        title, emoji, color_from, color_to: how the Space shows on the Hub (defaults: from the model's kind).
        license: the Space's license (default: the model card's).
        model_id: the model repo the Space demonstrates, linked from its card.
        short_description: one line under the title on the Hub.
    """
    repo_dir, space_dir = Path(repo_dir), Path(space_dir)
    app = demo_app(repo_dir)
    if app is None:
        raise ValueError(
            f"{repo_dir} serves no pipeline a demo drives (image, audio or video; a PixelSNAIL prior alone makes code "
            "maps, not images): build the Space from its generation bundle"
        )
    if space_dir.resolve() == repo_dir.resolve():
        raise ValueError("the Space folder must differ from the model folder")
    if space_dir.exists():
        shutil.rmtree(space_dir)
    shutil.copytree(repo_dir, space_dir, ignore=_IGNORED)
    readme = space_dir / "README.md"
    has_card = readme.exists()
    license = license or _model_card_license(readme)
    if has_card:
        readme.rename(space_dir / MODEL_CARD_FILE)
    write_app(space_dir)
    description = short_description or app.short_description
    if len(description) > MAX_SHORT_DESCRIPTION:
        raise ValueError(
            f"short_description has {len(description)} characters; the Hub takes at most {MAX_SHORT_DESCRIPTION}"
        )
    readme.write_text(
        space_readme(
            title=title or app.title,
            emoji=emoji or app.emoji,
            color_from=color_from,
            color_to=color_to,
            license=license,
            short_description=description,
            model_id=model_id,
            has_card=has_card,
            summary=app.summary,
        )
    )
    return space_dir


def push_space(
    space_dir: str | Path,
    space_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
):
    """Uploads the Space folder to `space_id` in ONE commit, creating a Gradio Space if needed. Returns the
    `CommitInfo`."""
    from huggingface_hub import CommitOperationAdd, HfApi

    space_dir = Path(space_dir)
    missing = [name for name in ("README.md", APP_FILE, REQUIREMENTS_FILE) if not (space_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{space_dir} is not a Space folder of build_space (missing {', '.join(missing)})")
    # A model folder holds app.py and requirements.txt too; its README is a model card, not a Space's metadata.
    if _card_header(space_dir / "README.md").get("sdk") != "gradio":
        raise FileNotFoundError(
            f"{space_dir} is not a Space folder of build_space (its README.md has no `sdk: gradio`)"
        )
    files = [
        path
        for path in sorted(space_dir.rglob("*"))
        if path.is_file()
        and path.suffix != ".pyc"
        and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(space_dir).parts)
    ]
    api = HfApi(token=token)
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(space_dir).as_posix(), path_or_fileobj=str(path))
        for path in files
    ]
    commit = api.create_commit(
        space_id,
        operations,
        commit_message=commit_message or "Upload the Gradio demo: app, model files, pinned requirements",
        repo_type="space",
    )
    logger.info(f"pushed the Space {space_id}: {getattr(commit, 'commit_url', commit)}")
    return commit


__all__ = [
    "DEMO_APPS",
    "DemoApp",
    "app_template",
    "build_space",
    "demo_app",
    "demo_card_section",
    "pinned_requirements",
    "push_space",
    "serves_demo",
    "write_app",
]
