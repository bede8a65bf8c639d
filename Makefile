# Two entry points that work on a fresh machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --no-input -q
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# The demo needs the runtime, its Triton client (it serves a Triton role from the fake server), ONNX Runtime
# (the pipeline's own onnxruntime-gpu; it runs on the CPU too) and safetensors. onnxruntime and onnxruntime-gpu
# are one module: a CPU-only onnxruntime left in the venv is removed first.
$(DEMO_STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) uninstall -y onnxruntime 2>/dev/null
	$(PIP) install -e '.[triton,onnx-gpu,safetensors]'
	touch $@

# The tests need the dev extra, and wheels for the offline pre-commit test (its hook
# environments install from this wheelhouse, inside a network namespace).
$(TEST_STAMP): pyproject.toml Makefile | $(PY)
	$(PIP) uninstall -y onnxruntime 2>/dev/null
	$(PIP) install -e '.[dev]'
	# the CPU-only onnxruntime, beside (not in) the venv: tests/runtimes prove it refuses cuda:0 too
	$(PIP) install --no-deps --upgrade --target $(VENV)/ort-cpu onnxruntime
	$(PIP) download --only-binary=:all: -d $(VENV)/wheelhouse 'setuptools>=77' wheel \
		'pydantic>=2.6,<3' 'PyYAML>=6.0' 'numpy>=1.24' 'libcst>=1.1'
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(PY) examples/demo.py

lint: $(TEST_STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m mm_lint .

test: lint
	$(PY) -m pytest -q

bench: $(TEST_STAMP)
	$(PY) bench/run_all.py

docs: $(TEST_STAMP)
	$(PY) docs/generate.py

clean:
	rm -rf $(VENV) demo-out .pytest_cache .mypy_cache .ruff_cache
