"""Uploads: a repo folder to the Hub in ONE commit (`push_folder`), and what `scripts/train.py --push_to_hub` does
after training (`push_training_run`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import transformers
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard

from .cards import KIND_TITLES, package_version
from .repos import build_model_repo

logger = logging.getLogger(__name__)
# Never uploaded, wherever they are in the folder.
_SKIPPED_FILES = {".DS_Store"}


def repo_files(repo_dir: str | Path) -> list[Path]:
    """The files of a repo folder that go to the Hub, sorted (no caches, no hidden files)."""
    repo_dir = Path(repo_dir)
    files = []
    for path in sorted(repo_dir.rglob("*")):
        relative = path.relative_to(repo_dir)
        if not path.is_file() or path.name in _SKIPPED_FILES or path.suffix == ".pyc":
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        files.append(path)
    return files


def default_commit_message(repo_dir: str | Path) -> tuple[str, str]:
    """A commit title naming what is uploaded, and a description listing the files and the card's results."""
    repo_dir = Path(repo_dir)
    config = json.loads((repo_dir / "config.json").read_text())
    kind = config.get("model_type", "model")
    title = KIND_TITLES.get(kind, kind)
    if kind == "vq_generation":
        title += f" ({KIND_TITLES[config['vq_config']['model_type']]} + {len(config['prior_configs'])} prior(s))"
    message = f"Upload {title}: weights, code, pipelines, processor config, model card and images"
    lines = [f"Uploaded with hf_vqvae {package_version()} (transformers {transformers.__version__})."]
    readme = repo_dir / "README.md"
    if readme.exists():
        card = ModelCard.load(readme)
        for result in card.data.eval_results or []:
            lines.append(f"- {result.metric_name or result.metric_type}: {result.metric_value}")
    lines.append("")
    lines += [f"- {path.relative_to(repo_dir).as_posix()}" for path in repo_files(repo_dir)]
    return message, "\n".join(lines)


def push_folder(
    repo_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
):
    """Uploads every file of `repo_dir` (weights, code, processor config, card, images) to `repo_id` in ONE
    commit, creating the repo if needed. Returns the `CommitInfo`."""
    repo_dir = Path(repo_dir)
    files = repo_files(repo_dir)
    required = [name for name in ("config.json", "README.md") if not (repo_dir / name).exists()]
    if required:
        raise FileNotFoundError(f"{repo_dir} is not a Hub-ready folder (missing {', '.join(required)})")
    default_message, default_description = default_commit_message(repo_dir)
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    operations = [
        CommitOperationAdd(path_in_repo=path.relative_to(repo_dir).as_posix(), path_or_fileobj=str(path))
        for path in files
    ]
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or default_message,
        commit_description=commit_description if commit_description is not None else default_description,
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
    )
    logger.info(f"pushed {len(operations)} files to {repo_id} in one commit: {getattr(commit, 'commit_url', commit)}")
    return commit


def push_training_run(
    output_dir: str | Path,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    license: str = "apache-2.0",
):
    """What `scripts/train.py --push_to_hub` does after saving: builds `<output_dir>/hub` and pushes it. A bare
    `name` goes to the namespace of the token's user, and the card's snippets name that full id."""
    if "/" not in repo_id:
        repo_id = f"{HfApi(token=token).whoami()['name']}/{repo_id}"
    repo_dir = build_model_repo(output_dir, Path(output_dir) / "hub", repo_id, license=license)
    return push_folder(repo_dir, repo_id, private=private, token=token)


__all__ = ["default_commit_message", "push_folder", "push_training_run", "repo_files"]
