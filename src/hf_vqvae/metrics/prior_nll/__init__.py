"""The `prior_nll` evaluate module: load it with `hf_vqvae.metrics.load_metric("prior_nll")`.

The package marker only makes setuptools ship `prior_nll.py` in wheels; evaluate copies that script alone."""
