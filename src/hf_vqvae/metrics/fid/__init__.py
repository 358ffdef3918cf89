"""The `fid` evaluate module: load it with `hf_vqvae.metrics.load_metric("fid")`.

The package marker only makes setuptools ship `fid.py` in wheels; evaluate copies that script alone."""
