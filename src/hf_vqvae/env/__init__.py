"""Environments and video (van den Oord et al. 2017, sections 4.2 and 4.4) on ViZDoom episodes
(`hf_vqvae.data.vizdoom`): training the frame VQ-VAE, the code-map VQ-VAE, the prior over its codes and the
action-conditioned dynamics prior on in-memory episodes (`training`), an inverse-dynamics classifier for action
consistency (`inverse_dynamics`), and the held-out measurements (`metrics`). `scripts/run_demo_env.py` runs them
all; the models themselves live beside the others (`modeling_video.py`, `modeling_two_stage.py`)."""
