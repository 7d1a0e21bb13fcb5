# Two commands do everything on a fresh machine:
#   make demo   create .venv, install vaelab, run the main job (compare PCA, AE and VAE on digits)
#   make test   install the test tools and run the whole suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch, pinned here only: the package itself asks for a range.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: install demo test
install: $(VENV)/.installed

demo: install
	$(VENV)/bin/vaelab compare

test: install
	$(PY) -m pytest -q
