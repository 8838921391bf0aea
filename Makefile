# The two entry points: `make demo` (main job on a built-in synthetic default) and `make test`.
# Both create the virtual environment on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision must be a pair that imports together; override for another platform.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.medimg-installed
PYTEST_ARGS ?=

.PHONY: venv demo test test-fast layers bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/medimg demo --output-dir runs/demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The layer contracts of pyproject.toml ([tool.importlinter]) alone; `make test` runs them too
# (tests/test_layers.py).
layers: $(STAMP)
	$(VENV)/bin/lint-imports

# Everything but the tests marked slow (end-to-end, real data): for quick local loops.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

# Every benchmark, quick, each writing its JSON; then the README's table from those JSON files.
# `make bench BENCH_ARGS=` (empty) for the full runs the README quotes.
BENCH_ARGS ?= --quick
BENCH_OUT ?= .bench/results
BENCHES := io_nifti io_dicom preprocess metrics_seg inference predict_folder train_cls augment train
bench: $(STAMP)
	mkdir -p $(BENCH_OUT)
	for b in $(BENCHES); do $(PY) benchmarks/$$b.py $(BENCH_ARGS) --json $(BENCH_OUT)/$$b.json || exit 1; done
	$(PY) benchmarks/readme_table.py $(addprefix $(BENCH_OUT)/,$(addsuffix .json,$(BENCHES))) > $(BENCH_OUT)/table.md
	cat $(BENCH_OUT)/table.md

clean:
	rm -rf $(VENV) runs .pytest_cache
