# Two commands do everything on a fresh machine:
#   make demo   create .venv, install vaelab, run the main job (compare PCA, AE and VAE on digits)
#   make test   install the test tools and the Debian packages the suite needs, then lint and run the whole suite
#   make lint   ruff (lint and format check) and mypy: zero findings is the gate
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# What the suite needs from Debian: the real Fashion-MNIST, and Chromium + its driver for the
# report's browser test.
DEB_PACKAGES := dataset-fashion-mnist chromium chromium-driver

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch, pinned here only: the package itself asks for a range.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: install system-packages demo lint test
install: $(VENV)/.installed

# Installs the missing DEB_PACKAGES when run as root; otherwise stops with one line naming them.
# dpkg-query's status, not `dpkg -s`: a removed package whose config files remain is still
# "known" to dpkg -s (exit 0) but not installed.
system-packages:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: the suite needs the Debian packages$$missing (no apt-get here: install Fashion-MNIST, Chromium and chromedriver by other means)" >&2; exit 1; \
	fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	    echo "make test: missing Debian packages$$missing; install them with: sudo apt-get install$$missing" >&2; exit 1; \
	fi; \
	echo "make test: installing Debian packages$$missing"; \
	DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing </dev/null

demo: install
	$(VENV)/bin/vaelab compare

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install system-packages lint
	$(PY) -m pytest -q
