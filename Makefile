# Targets for the book and its package. The README's two commands are `make book` and `make test`.
# Both create .venv on first use and reuse it afterwards (re-installing only when pyproject.toml
# or the version changes).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Torch is installed before refimpl (unless the environment already has one) so that the
# package's range (torch>=2.1) is already met. The default is the build pip finds for
# TORCH_SPEC; readers with another setup pass TORCH_SPEC / TORCH_INDEX (see README).
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
BUILD_FLAGS ?= -W -n --keep-going
# Outputs that hold on every machine (CONTRIBUTING.md): the committed outputs are made under one
# fixed kernel configuration (AVX2 BLAS kernels in MKL and OpenBLAS, one thread for BLAS, OpenMP
# and torch); `make test` re-runs them under the machine's defaults, so every run compares two
# instruction paths. `make nbval-sse` compares a third one (SSE4.2) on demand.
NOTEBOOK_ENV ?= MKL_ENABLE_INSTRUCTIONS=AVX2 OPENBLAS_CORETYPE=Haswell OMP_NUM_THREADS=1 \
                MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
SSE_ENV      ?= MKL_ENABLE_INSTRUCTIONS=SSE4_2 OPENBLAS_CORETYPE=Nehalem
NBVAL = $(PY) -m pytest --nbval-lax --nbval-sanitize-with tools/nbval_sanitize.cfg notebooks

.PHONY: setup book pages notebooks notebooks-all test browser-deps nbval-sse lint bench long-runs \
        clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml refimpl/_version.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c "import torch" 2>/dev/null || \
	  $(PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[book,test]"
	@touch $@

# Execute the notebooks whose .md source changed since their .ipynb was executed.
notebooks: setup
	$(NOTEBOOK_ENV) $(PY) tools/execute_notebooks.py --stale

# Re-execute every notebook (e.g. after a change in refimpl that alters outputs).
notebooks-all: setup
	$(NOTEBOOK_ENV) $(PY) tools/execute_notebooks.py --all

pages: setup
	$(PY) tools/build_pages.py

book: notebooks pages
	$(VENV)/bin/jupyter-book build . $(BUILD_FLAGS)
	$(PY) tools/check_offline.py _build/html
	@echo "The book: $(CURDIR)/_build/html/index.html"

# ruff over the tree; mypy over refimpl/ with pyproject.toml's [tool.mypy] (tests/test_typing.py
# runs it too, so that `pytest` alone checks the types).
lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# Unit, property and peer tests; nbval re-executes every notebook; then a strict build of the
# book from the committed outputs (broken references, citations or labels fail it), and every
# page of it opened in headless Chromium (tests/browser: reading defects; screenshots of each
# page's first screen in _build/screenshots/).
BOOK_CHECK := _build/check/_build/html
test: setup lint browser-deps
	$(PY) tools/build_pages.py
	$(PY) -m pytest tests -m "not browser"
	$(NBVAL)
	$(VENV)/bin/jupyter-book build . $(BUILD_FLAGS) -q --path-output _build/check
	$(PY) tools/check_offline.py $(BOOK_CHECK)
	BOOK_HTML=$(BOOK_CHECK) $(PY) -m pytest tests/browser -m browser

# The browser tests drive the system's Chromium (Debian's package; playwright downloads nothing).
# $CHROMIUM names another one.
browser-deps:
	@command -v chromium >/dev/null || test -n "$$CHROMIUM" || { \
	  command -v apt-get >/dev/null || { \
	    echo "make test needs Chromium: install it, or set CHROMIUM=/path/to/chromium" >&2; \
	    exit 1; }; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# The notebooks' checked outputs under a third instruction path (SSE4.2 kernels).
nbval-sse: setup
	$(SSE_ENV) $(NBVAL)

bench: setup
	$(PY) -m benchmarks

# The longer experiments that rank methods the notebooks' default budgets cannot (several
# seeds per variant; tens of minutes on 2 cores). They write runs/results/*.json, which the
# notebooks plot beside their small live runs.
long-runs: setup
	$(NOTEBOOK_ENV) $(PY) -m runs.lora_family
	$(NOTEBOOK_ENV) $(PY) -m runs.attention_training --page training
	$(NOTEBOOK_ENV) $(PY) -m runs.attention_training --page training_budget

clean:
	rm -rf _build book/generated
