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

# The main job on the embedded default: the synthetic set (made once, cached in data/), the
# quick suite on a private local Ray tracked in mlruns/, then its report and dashboard. A rerun
# resumes the last quick launch (finished trials are kept); when there is none, or the suite
# or code changed since, `--resume` exits 2 and a new launch starts, which reuses every trial a
# finished run in mlruns/ trained already: a second `make demo` trains nothing and says so.
demo: setup
	$(BIN)/prm-rga data synth --out data/synth
	$(BIN)/prm-rga suite run quick --scale tiny --resume 2>/dev/null || { [ $$? -eq 2 ] && \
	  $(BIN)/prm-rga suite run quick --scale tiny; }
	$(BIN)/prm-rga dashboard quick --out reports/quick
	@echo
	@echo "Results: reports/quick/report.md, reports/quick/index.html (open in a browser)"
	@echo "MLflow UI on these runs: $(BIN)/prm-rga ui   (then open the address it prints)"

test: setup
	$(BIN)/python -m pytest tests

bench: setup
	$(BIN)/python bench/bench_step.py
