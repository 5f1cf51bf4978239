# Two commands on a fresh machine: `make demo` (the main job on the built-in data) and `make test`.
# Both create/reuse .venv and install the CPU build of torch first, so pip never pulls a CUDA build.
# On a GPU machine: `make demo TORCH_SPEC="torch"` (pip then picks the CUDA build for your platform).
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.hfgen-installed

.PHONY: install demo test browser clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The main job: train every family on the built-in digits, evaluate all with the same code, write zoo-report/.
demo: $(STAMP)
	$(BIN)/hfgen zoo --dataset digits --output_dir zoo-report

# The Spaces' browser tests drive Debian's chromium (never a browser download); install it when missing.
browser:
	command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q tests

clean:
	rm -rf $(VENV) out zoo-report test-artifacts
