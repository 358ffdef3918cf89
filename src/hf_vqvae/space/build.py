"""The web demo of Hub-ready folders, and their Hugging Face Space variant.

* `write_app(repo_dir)`: puts the Gradio demo `app.py` (the template shipped beside this file) into a model folder
  that serves images, so that `python app.py` in a downloaded repo runs the demo.
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
from importlib import metadata, resources
from pathlib import Path

import yaml

logger = logging.getLogger(__name__)

APP_FILE = "app.py"
# The Gradio version the demo is tested with (tests/test_space_app.py drives it in a real browser); the `demo` extra
# of pyproject.toml pins the same.
GRADIO_VERSION = "6.31.0"
# What the Space installs besides gradio: the demo's imports and what loading the model needs.
SPACE_REQUIREMENTS = ("torch", "transformers", "safetensors", "huggingface_hub", "pillow", "numpy")
# The tasks whose pipelines the demo drives; a folder serving none of them (a prior alone) gets no demo.
DEMO_TASKS = ("image-to-image", "unconditional-image-generation")
MODEL_CARD_FILE = "model_card.md"
MAX_SHORT_DESCRIPTION = 60  # the Hub's limit on a Space's `short_description`
_IGNORED = shutil.ignore_patterns(".*", "__pycache__", "*.pyc")


def app_template() -> Path:
    """The demo's source, shipped as package data (`hf_vqvae/space/app.py`)."""
    return Path(str(resources.files("hf_vqvae") / "space" / APP_FILE))


def serves_demo(repo_dir: str | Path) -> bool:
    """Whether the folder's config.json registers a pipeline the demo drives (see `DEMO_TASKS`)."""
    config_path = Path(repo_dir) / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{repo_dir} is not a saved model folder (no config.json)")
    tasks = json.loads(config_path.read_text()).get("custom_pipelines") or {}
    return any(task in tasks for task in DEMO_TASKS)


def write_app(repo_dir: str | Path) -> Path | None:
    """Copies the demo into a model folder that serves images; returns its path, or None for a folder with no image
    pipeline (a PixelSNAIL prior alone: its demo is the generation bundle that holds it)."""
    repo_dir = Path(repo_dir)
    if not serves_demo(repo_dir):
        logger.info(f"{repo_dir} serves no image pipeline: no {APP_FILE} written")
        return None
    target = repo_dir / APP_FILE
    shutil.copyfile(app_template(), target)
    return target


def _version(distribution: str) -> str:
    # A local build tag ("2.13.0+cpu") names no release on PyPI: pin the release itself.
    return metadata.version(distribution).split("+")[0]


def pinned_requirements() -> list[str]:
    """requirements.txt lines: gradio at the tested version, the rest at the versions installed here."""
    return [f"gradio=={GRADIO_VERSION}", *(f"{name}=={_version(name)}" for name in SPACE_REQUIREMENTS)]


def _model_card_license(readme: Path) -> str | None:
    if not readme.exists():
        return None
    text = readme.read_text()
    if not text.startswith("---"):
        return None
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    return header.get("license")


def space_readme(
    title: str,
    emoji: str,
    color_from: str,
    color_to: str,
    license: str | None,
    short_description: str,
    model_id: str | None,
    has_card: bool,
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
    body = [
        f"# {title}",
        "",
        "Upload an image to see its reconstruction, its code map(s) and the PSNR; generation bundles also sample new "
        "images. The demo runs the model's own `transformers` pipelines (`trust_remote_code=True`).",
        "",
    ]
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
    emoji: str = "🧩",
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
    if not serves_demo(repo_dir):
        raise ValueError(
            f"{repo_dir} serves no image pipeline (a PixelSNAIL prior alone makes code maps, not images): build the "
            "Space from its generation bundle"
        )
    if space_dir.resolve() == repo_dir.resolve():
        raise ValueError("the Space folder must differ from the model folder")
    config = json.loads((repo_dir / "config.json").read_text())
    kind = {"vqvae": "VQ-VAE", "vqvae2": "VQ-VAE-2", "vq_generation": "VQ-VAE generation"}.get(
        config.get("model_type"), "VQ-VAE"
    )
    if space_dir.exists():
        shutil.rmtree(space_dir)
    shutil.copytree(repo_dir, space_dir, ignore=_IGNORED)
    readme = space_dir / "README.md"
    has_card = readme.exists()
    license = license or _model_card_license(readme)
    if has_card:
        readme.rename(space_dir / MODEL_CARD_FILE)
    write_app(space_dir)
    (space_dir / "requirements.txt").write_text("\n".join(pinned_requirements()) + "\n")
    generation = config.get("model_type") == "vq_generation"
    description = short_description or (
        "Reconstructs images and samples new ones" if generation else "Reconstructs images and shows their codes"
    )
    if len(description) > MAX_SHORT_DESCRIPTION:
        raise ValueError(
            f"short_description has {len(description)} characters; the Hub takes at most {MAX_SHORT_DESCRIPTION}"
        )
    readme.write_text(
        space_readme(
            title=title or f"{kind} demo",
            emoji=emoji,
            color_from=color_from,
            color_to=color_to,
            license=license,
            short_description=description,
            model_id=model_id,
            has_card=has_card,
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
    missing = [name for name in ("README.md", APP_FILE, "requirements.txt") if not (space_dir / name).exists()]
    if missing:
        raise FileNotFoundError(f"{space_dir} is not a Space folder of build_space (missing {', '.join(missing)})")
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


__all__ = ["app_template", "build_space", "pinned_requirements", "push_space", "serves_demo", "write_app"]
