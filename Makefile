# `make app` and `make test` do all the set-up: a virtual environment in .venv, torch's CPU build first,
# then newsarchive with its app and test extras. Re-running them skips what is already done.
PYTHON ?= python3
# Pinned, and installed before anything that depends on torch: unpinned, pip pulls gigabytes of CUDA packages.
TORCH ?= torch==2.13.0
# llama-cpp-python (the test extra's language model server) has no wheel here and builds from source, for about
# five minutes. Built for the newest instructions of the CPU at hand it crashed at the first token on a Xeon with
# AMX, so it is built for those every x86-64 server has.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
INDEX_DIR ?= archive

.PHONY: install test bare-install index app docs lint clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' $(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest

# A plain `pip install .` into a venv of its own (no extras) indexes every kind of input and answers a search.
bare-install:
	PYTHON=$(PYTHON) TORCH='$(TORCH)' bash .ci/bare-install

index: install
	$(BIN)/newsarchive index seeds/ --index-dir $(INDEX_DIR)

app: install
	test -f $(INDEX_DIR)/manifest.json || $(BIN)/newsarchive index seeds/ --index-dir $(INDEX_DIR)
	NEWSARCHIVE_INDEX_DIR=$(INDEX_DIR) $(BIN)/streamlit run search_app/streamlit_app.py \
		--server.address 127.0.0.1 --server.headless true --browser.gatherUsageStats false

# The documentation site, rebuilt as pages change (its tools come with the test extra, through the docs extra).
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve -a 127.0.0.1:8000

# Style, the package's layers (pyproject.toml's [tool.importlinter]), the CLI reference against --help, and the
# docs site with every link checked; CI runs it.
lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/cog --check docs/cli.md
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"

clean:
	rm -rf $(VENV) $(INDEX_DIR) .pytest_cache site
