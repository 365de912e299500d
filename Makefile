# scsynth: two commands for a new user.
#   make demo   create .venv (if needed), install, run the default workflow offline, render the report
#   make test   create .venv (if needed), install, run the full test suite
#   make test-unit  the unit tier only (no Snakemake runs, no model trained to a paper's finding; docs/testing.md)
# Variables: CORES (default all), PYTEST_ARGS, TEST_WORKERS (default 2), TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu to force the
# CPU build of torch on a machine whose default index would serve the CUDA build).

VENV        ?= .venv
PYTHON      ?= python3
CORES       ?= all
PYTEST_ARGS ?=
# Two pytest workers, each taking whole test modules (tests/conftest.py orders them): the end-to-end runs spend
# much of their time in single-threaded start-up (imports, numba compilation), so two share two cores well.
TEST_WORKERS ?= 2
TORCH_INDEX ?=
BIN         := $(VENV)/bin
STAMP       := $(VENV)/.scsynth-installed
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: install demo report test test-unit dryrun clean

install: $(STAMP)

# torch first and pinned: anything else would let scvi-tools/lightning pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/snakemake --cores $(CORES)
	$(MAKE) report

report: install
	$(BIN)/snakemake --report results/report.html

dryrun: install
	$(BIN)/snakemake -n

test: install
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest --numprocesses $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder \
		-m "not (science or workflow or system)" $(PYTEST_ARGS)

clean:
	rm -rf results logs .snakemake
