"""The `reconstruction` evaluate module: load it with `hf_vqvae.metrics.load_metric("reconstruction")`.

The package marker only makes setuptools ship `reconstruction.py` in wheels; evaluate copies that script alone."""
