# Two commands on a fresh clone:  `make demo`  and  `make test`.
# Each creates .venv and installs the pinned dependencies when they are missing.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test bench lint typecheck clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/newsmon demo

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench.tagging
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.warehouse

lint: $(STAMP)
	$(BIN)/ruff check newsmon flows parsers warehouse tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data/demo* .pytest_cache
