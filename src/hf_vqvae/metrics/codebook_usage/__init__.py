"""The `codebook_usage` evaluate module: load it with `hf_vqvae.metrics.load_metric("codebook_usage")`.

The package marker only makes setuptools ship `codebook_usage.py` in wheels; evaluate copies that script alone."""
