# Two entry points that work on a fresh machine with only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench docs clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	# Wheels for the offline pre-commit test (its hook envs install from here, inside a netns).
	$(PY) -m pip download -q --only-binary=:all: -d $(VENV)/wheelhouse 'setuptools>=68' wheel \
		'pydantic>=2.6,<3' 'PyYAML>=6.0' 'numpy>=1.24' 'libcst>=1.1'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run_all.py

docs: $(STAMP)
	$(PY) -m model_manager.docs_gen
	$(PY) -m model_manager.errors_doc

clean:
	rm -rf $(VENV) demo-out .pytest_cache
