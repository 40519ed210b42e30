# `make test` creates .venv when missing, installs the project with its test extras, and runs the suite;
# `make test-fast` runs it without the long end-to-end tests (marked slow: kill -9, Ray, Milvus Lite, schemathesis).
# `make install` creates .venv with the library, the index and the server (what `qvl` needs).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision are pinned to the builds this project is tested with; override on other platforms,
# for example `make test TORCH="torch==2.9.1 torchvision==0.24.1"` on aarch64.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# The package index torch comes from. Empty: pip's default, whose Linux builds of torch bundle CUDA (several
# GB). On a machine without an NVIDIA GPU pass the index of PyTorch's CPU-only builds: the URL after
# --index-url in the command that pytorch.org's install selector shows for "Compute Platform: CPU", as in
# `make install TORCH_INDEX=<that URL>` (README.md, "CPU-only install").
TORCH_INDEX ?=

.PHONY: test test-fast install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.torch: | $(PY)
	$(PY) -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	touch $@

$(VENV)/.installed-app: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install --quiet -e ".[index,server]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed-app

test: $(VENV)/.installed-dev
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m pytest -q

test-fast: $(VENV)/.installed-dev
	HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false $(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed-dev
	$(PY) bench/bench_embed.py --workload all

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info src/*.egg-info
