"""The Gradio web demos of Hub-ready folders (`app.py` for images, `audio_app.py`, `video_app.py`, with their shared
`demo_common.py`: templates copied into each folder, importing gradio, not hf_vqvae) and the builders of Hugging Face
Space folders (`build.py`)."""

from .build import (
    DEMO_APPS,
    DemoApp,
    app_template,
    build_space,
    demo_app,
    demo_card_section,
    pinned_requirements,
    push_space,
    serves_demo,
    write_app,
)

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
