# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ROWS   ?= 1000000

.PHONY: demo test install install-test services lint clean

demo: $(VENV)/.installed            ## set up and run the demo workspace in ./brickyard-demo
	$(BIN)/brickyard demo brickyard-demo --rows $(ROWS)

test: lint services                 ## lint, install test services, then run every test
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test       ## ruff, mypy (cache in .mypy_cache) and the import layers
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing brickyard and its dependencies into $(VENV) (a few minutes the first time)"
	$(BIN)/python -m pip install --progress-bar on -e '.[ml]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	@echo "Installing the test dependencies into $(VENV)"
	$(BIN)/python -m pip install --progress-bar on -e '.[test]'
	touch $@

services:                           ## install what the tests start: Azurite (npm), Java
	scripts/install-test-services.sh

clean:
	rm -rf $(VENV) .tools brickyard-demo
