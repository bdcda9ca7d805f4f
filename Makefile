# Everything derive needs is installed from here: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
CI     ?=

TEX_EN := latexmk texlive-latex-base texlive-latex-recommended texlive-pictures lmodern poppler-utils
TEX_ZH := texlive-xetex texlive-lang-chinese texlive-fonts-recommended

.PHONY: demo test lint typecheck bench install install-test clean tex-en tex-all chromium

HASH       := $(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
STAMP_RUN  := $(VENV)/.installed-run-$(HASH)
STAMP_TEST := $(VENV)/.installed-test-$(HASH)

# `make demo` needs only the package; `make test` adds the test tools, the bench's contenders (JAX) and PyTorch (an oracle).
install: $(STAMP_RUN)
install-test: $(STAMP_TEST)

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "derive needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml Makefile | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[fast]'
	rm -f $(VENV)/.installed-run-*
	touch $@

$(STAMP_TEST): $(STAMP_RUN)
	$(BIN)/python -m pip install --quiet -e '.[fast,test,bench]'
	@# PyTorch is a test oracle. 2.13.0 is the local CPU build; any other version downloads gigabytes.
	@if $(BIN)/python -m pip install --quiet '$(TORCH)'; then :; \
	elif [ -n "$(CI)" ]; then echo "error: could not install $(TORCH), and CI needs it" >&2; exit 1; \
	else echo "warning: could not install $(TORCH); the PyTorch oracle tests will be skipped" >&2; fi
	rm -f $(VENV)/.installed-test-*
	touch $@

# TeX for the lecture PDFs, from Debian, when missing: installed if we are root,
# otherwise the command to run is printed (and CI fails).
tex-en:
	@if command -v latexmk >/dev/null && command -v pdflatex >/dev/null && command -v pdftotext >/dev/null \
	  && kpsewhich pgfplots.sty >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_EN); \
	else echo "TeX is missing; as root run: apt-get install -y --no-install-recommends $(TEX_EN)" >&2; \
	  [ -z "$(CI)" ] || exit 1; fi

tex-all: tex-en
	@if command -v xelatex >/dev/null && kpsewhich ctexart.cls >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_ZH); \
	else echo "Chinese TeX is missing; as root run: apt-get install -y --no-install-recommends $(TEX_ZH)" >&2; \
	  [ -z "$(CI)" ] || exit 1; fi

# A browser for the tests of the HTML lecture (they read the page Chromium renders), from Debian, when missing.
chromium:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; \
	else echo "Chromium is missing; as root run: apt-get install -y --no-install-recommends chromium" >&2; \
	  [ -z "$(CI)" ] || exit 1; fi

demo: $(STAMP_RUN) tex-en
	$(BIN)/derive grad mazur w5
	$(BIN)/derive grad mazur w1
	$(BIN)/derive grad mazur --all --format json -o output/mazur.json
	$(BIN)/derive lecture mazur -o output/mazur.pdf
	$(BIN)/derive lecture mazur -o output/mazur.html

test: $(STAMP_TEST) tex-all chromium
	$(BIN)/python -m pytest
	$(MAKE) lint typecheck

lint: $(STAMP_TEST)
	$(BIN)/ruff check derive tests benchmarks
	$(BIN)/ruff format --check derive tests benchmarks

typecheck: $(STAMP_TEST)
	$(BIN)/mypy

bench: $(STAMP_TEST)
	$(BIN)/python benchmarks/derive_all.py
	cd benchmarks && ../$(BIN)/python big_networks.py
	$(BIN)/derive bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
