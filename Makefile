# The two commands of the README: `make demo` (set up, then run the main job on the embedded
# default) and `make test` (set up, then run the tests). The first set-up builds mmcv's C++ ops
# from source, about 12 minutes on 2 cores; pip caches the wheel, so later set-ups take ~1 min.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup demo reproduce test bench

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

# The whole paper on the embedded default: every suite with a tiny scale (table3 is paper scale
# only; tests/test_suites.py keeps this list complete), three seeds each, then one report and
# dashboard. First the cost of all of it (`--dry-run` of every suite together: a trial that an
# earlier suite trains counts once). Then one launch per suite, as in `demo`: `--resume` of the
# last launch, or a new launch when there is none or it changed (exit 2), which reuses every
# trial a finished run trained already, so a second `make reproduce` continues where the first
# stopped. Hours on 2 cores; stderr stays visible (an error must not vanish in a long run). A
# suite with a failed trial stops no other; `make reproduce` exits 1 at the end, naming it.
# Last, tools/check_reproduction.py: every trial of every suite has one finished run.
# With REPRO_EXPORT=DIR the run outlives its machine: the runs exported there are imported first
# (`suite import`), and each suite's finished runs are exported there when it ends (`suite
# export`), so that a copy of DIR continues the run on another machine.
REPRO_SUITES ?= quick table1 table4 table5 table6 fig2 table8 fig3 fig5 table7 table2 fig1 fig6
REPRO_SEEDS ?= 0 1 2
REPRO_EXPORT ?=

reproduce: setup
	$(BIN)/prm-rga data synth --out data/synth
	$(if $(REPRO_EXPORT),[ ! -d $(REPRO_EXPORT)/runs ] || $(BIN)/prm-rga suite import $(REPRO_EXPORT))
	$(BIN)/prm-rga suite run $(REPRO_SUITES) --seeds $(REPRO_SEEDS) --dry-run
	@failed=; for suite in $(REPRO_SUITES); do \
	  $(BIN)/prm-rga suite run $$suite --seeds $(REPRO_SEEDS) --resume || { [ $$? -eq 2 ] && \
	    echo "make reproduce: a new launch of $$suite" && \
	    $(BIN)/prm-rga suite run $$suite --seeds $(REPRO_SEEDS); } || failed="$$failed $$suite"; \
	  $(if $(REPRO_EXPORT),$(BIN)/prm-rga suite export $$suite --out $(REPRO_EXPORT) || \
	    failed="$$failed export-$$suite";) \
	done; \
	$(BIN)/prm-rga dashboard $(REPRO_SUITES) --out reports/reproduction || failed="$$failed report"; \
	$(BIN)/python tools/check_reproduction.py reports/reproduction --suites $(REPRO_SUITES) \
	  --seeds $(REPRO_SEEDS) || failed="$$failed check"; \
	echo; echo "Results: reports/reproduction/report.md, reports/reproduction/index.html"; \
	if [ -n "$$failed" ]; then \
	  echo "make reproduce: not complete:$$failed (\`make reproduce\` again continues)"; exit 1; fi

# Two pytest-xdist workers, each taking a whole test file at a time (its module fixtures are made
# once): on 2 cores the tests' waits (Ray and server start-up, subprocesses) overlap the other
# worker's computing. The 25 slowest tests are listed at the end.
test: setup
	$(BIN)/python -m pytest tests -n 2 --dist loadfile --durations=25

bench: setup
	$(BIN)/python bench/bench_step.py
