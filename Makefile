# Two commands on a fresh machine: `make demo` (the main job on the built-in data) and `make test`.
# Both create/reuse .venv and install the CPU build of torch first, so pip never pulls a CUDA build.
# On a GPU machine: `make demo TORCH_SPEC="torch"` (pip then picks the CUDA build for your platform).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.hfgen-installed

HUB_VENV ?= .venv-hub-server
HUB_STAMP := $(HUB_VENV)/.olah-installed

FASHION_MNIST_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install install-inception fashion-mnist demo screenshots test docs browser clean hub-server-env hub-server

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev,docs]" "$(TORCH_SPEC)"
	touch $(STAMP)

install: $(STAMP)

# torch-fidelity, for `hfgen evaluate --judge inception` (`--judge_model FILE` offline). Passing the torch pin along
# makes pip pick the torchvision built for that torch (0.28 for 2.13) instead of upgrading torch; a +cpu torch from
# PyTorch's index needs its torchvision from the same index: `make install-inception TORCH_INDEX="--index-url https://download.pytorch.org/whl/cpu"`.
TORCH_INDEX ?=
install-inception: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[inception]" "$(TORCH_SPEC)" $(TORCH_INDEX)

# Debian's Fashion-MNIST IDX files for the one test that reads the real files, installed when root and missing
# (as .ci/run does); otherwise that test is skipped and the IDX reader is still tested on files the test writes.
fashion-mnist:
	@if [ ! -d $(FASHION_MNIST_DIR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -q && apt-get install -y -q dataset-fashion-mnist) >/dev/null 2>&1 \
	    || echo "make: could not install dataset-fashion-mnist; its real-files test will be skipped"; \
	fi

# The main job: train every family on the built-in digits, evaluate all with the same code, write zoo-report/.
# GAN training depends on the thread count (same seed, 1 vs 2 threads: different weights), so the demo pins the 2
# threads the README's table was made with: on any machine it reproduces that table to the digit (same torch, CPU).
# `make demo DEMO_THREADS=16` runs faster and gives other digits.
DEMO_THREADS ?= 2
demo: $(STAMP)
	OMP_NUM_THREADS=$(DEMO_THREADS) $(BIN)/hfgen zoo --dataset digits --output_dir zoo-report

# The docs' Space screenshots (docs/screenshots/), taken by the browser test on the models of `make demo`.
screenshots: $(STAMP) browser
	test -f zoo-report/metrics.json || $(MAKE) demo
	HFGEN_SPACES_ZOO=zoo-report HFGEN_SCREENSHOTS=1 $(BIN)/python -m pytest -q tests/test_spaces.py -k real_browser

# The test Hub runs olah from its own environment: installing olah into .venv downgrades psutil.
$(HUB_STAMP):
	test -x $(HUB_VENV)/bin/python || $(PYTHON) -m venv $(HUB_VENV)
	$(HUB_VENV)/bin/python -m pip install -q "olah==0.5.4"
	touch $(HUB_STAMP)

hub-server-env: $(HUB_STAMP)

# A local Hub by hand: HF_ENDPOINT=http://127.0.0.1:8090 and the printed token make huggingface_hub use it.
hub-server: $(HUB_STAMP)
	$(HUB_VENV)/bin/python tests/hub_server.py --root out/hub --port 8090

# The docs site (docs/ -> site/), every warning an error: a broken link, anchor or docstring fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# Two pytest-xdist workers of one torch thread each (a test file stays on one worker, so its module fixtures are made
# once): the suite is mostly single-threaded work - subprocess start-up, imports, tiny networks - so two of them
# finish it in ~11 min on 2 cores against ~18 in one process of two threads. `make test TEST_WORKERS=0`: one process.
TEST_WORKERS ?= 2
test: $(STAMP) $(HUB_STAMP) browser fashion-mnist
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20 tests

# The Spaces' browser tests drive Debian's chromium (never a browser download); install it when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

clean:
	rm -rf $(VENV) $(HUB_VENV) out zoo-report test-artifacts site
