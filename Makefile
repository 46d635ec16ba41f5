# `make demo` and `make test` set everything up on a fresh machine: a .venv, the CPU build of
# torch first (so nothing pulls CUDA wheels), then this package with the extras it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0

.PHONY: demo test venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# One stamp per extras set; redone when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[$*]"
	touch $@

venv: $(VENV)/.installed-all

demo: $(VENV)/.installed-all
	$(PY) examples/demo.py

test: $(VENV)/.installed-all
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
