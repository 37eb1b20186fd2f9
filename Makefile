# LayerSplit: `make run` and `make test` are all a fresh machine needs; both do the set-up first.
SWIFT        ?= swift
# Release builds everywhere: numeric Swift is many times slower in debug, and the tests train real models.
SWIFT_FLAGS  := -c release -Xswiftc -enable-testing
BIN          := .build/release/layersplit
PACKAGES     := libopenblas-dev libhdf5-dev zlib1g-dev pkg-config hdf5-tools dataset-fashion-mnist slurmctld slurmd munge slurm-client
VENV         := .venv-bench
SUDO         := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup build run test test-python bench clean

## setup: install the system packages that are missing (silent when all are present)
setup:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make setup: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

## build: compile the package in release mode
build: setup
	$(SWIFT) build $(SWIFT_FLAGS)

## run: the main job on the built-in default
run: build
	$(BIN) search search-spaces/quickstart.yaml

## test: build and run every test (release mode), then the Python package's tests
test: setup
	$(SWIFT) build $(SWIFT_FLAGS) --build-tests
	$(SWIFT) test $(SWIFT_FLAGS) --skip-build
	@$(MAKE) --no-print-directory test-python

## test-python: pytest on python/tests in $(PYVENV) (created on first use: numpy, h5py, pandas, matplotlib, pytest, python/ editable; no torch, so its tests skip)
PYVENV := .venv-test
test-python:
	@if [ ! -x $(PYVENV)/bin/python ] || ! $(PYVENV)/bin/python -c "import sys, numpy, h5py, pandas, matplotlib, pytest, layersplit; \
	    sys.exit(not layersplit.__file__.startswith('$(CURDIR)/python/'))" 2>/dev/null; then \
	  echo "make test: creating $(PYVENV) with numpy, h5py, pandas, matplotlib, pytest and python/ (first time only: about 40 s, 320 MB)"; \
	  python3 -m venv $(PYVENV) && $(PYVENV)/bin/pip install -q numpy h5py pandas matplotlib pytest && \
	    $(PYVENV)/bin/pip install -q -e python/; \
	fi
	LAYERSPLIT=$(CURDIR)/$(BIN) $(PYVENV)/bin/python -m pytest -q -p no:cacheprovider python/tests

## bench: speed against PyTorch and numpy on CPU, candidates per hour on the small-batch protocols, search efficiency, the run store at 100,000 trials, PyTorch interop (creates $(VENV) with torch on first use)
bench: build
	@if [ ! -x $(VENV)/bin/python ] || ! $(VENV)/bin/python -c "import torch, numpy, threadpoolctl, h5py" 2>/dev/null; then \
	  echo "make bench: creating $(VENV) with torch, numpy, threadpoolctl (about 2.7 GB of wheels)"; \
	  python3 -m venv $(VENV) && $(VENV)/bin/pip install -q torch numpy threadpoolctl h5py \
	    || echo "make bench: PyTorch could not be installed; the comparison will say so"; \
	fi
	$(VENV)/bin/python bench/compare.py --layersplit $(BIN) --out bench/results.md
	$(VENV)/bin/python bench/trials.py --layersplit $(BIN) --python $(VENV)/bin/python --out bench/trials-results.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN) bench search | tee bench/search-results.md
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN) bench store | tee bench/store-results.md
	$(VENV)/bin/python scripts/check_interop.py --layersplit $(BIN) | tee bench/interop-results.md

clean:
	rm -rf .build
