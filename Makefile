# The two commands of the README: `make demo` (set up, then run the main job on the embedded
# default) and `make test` (set up, then run the tests). The first set-up builds mmcv's C++ ops
# from source, about 12 minutes on 2 cores; pip caches the wheel, so later set-ups take ~1 min.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo test bench

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml tools/setup.sh
	PYTHON=$(PYTHON) bash tools/setup.sh $(VENV)

demo: setup
	$(BIN)/prm-rga train experiments/configs/tiny/faster-rcnn_tiny_rga-prm_synth.py

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/bench_step.py
