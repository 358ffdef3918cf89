"""The Gradio web demo of Hub-ready folders (`app.py`, a template copied into each folder; it imports gradio, not
hf_vqvae) and the builders of Hugging Face Space folders (`build.py`)."""

from .build import app_template, build_space, pinned_requirements, push_space, serves_demo, write_app

__all__ = ["app_template", "build_space", "pinned_requirements", "push_space", "serves_demo", "write_app"]
