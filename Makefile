# Everything derive needs is installed from here: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
TORCH  := torch==2.13.0
CI     ?=

.PHONY: demo test lint typecheck bench install clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "derive needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@# PyTorch is a test oracle. 2.13.0 is the local CPU build; any other version downloads gigabytes.
	@if $(BIN)/python -m pip install --quiet '$(TORCH)'; then :; \
	elif [ -n "$(CI)" ]; then echo "error: could not install $(TORCH), and CI needs it" >&2; exit 1; \
	else echo "warning: could not install $(TORCH); the PyTorch oracle tests will be skipped" >&2; fi
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/derive grad mazur w5
	$(BIN)/derive grad mazur w1
	$(BIN)/derive grad mazur --all --format json -o output/mazur.json
	@echo "wrote output/mazur.json"

test: $(STAMP)
	$(BIN)/python -m pytest
	$(MAKE) lint typecheck

lint: $(STAMP)
	$(BIN)/ruff check derive tests benchmarks
	$(BIN)/ruff format --check derive tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/derive_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
