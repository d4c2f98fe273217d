# Every target sets itself up: a .venv with the package (and, for tests, the test extras).
# On CPU-only machines `torch==2.13.0` resolves to the CPU build; set TORCH_SPEC to choose another.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
# spandrel imports torchvision, which does not load against the CPU wheel above; the interop tests
# run in a second venv with a matching full torch + torchvision pair (~6 GB, a few minutes).
INTEROP_VENV ?= .venv-interop
INTEROP_TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/srgan demo -o demo

$(INTEROP_VENV)/.installed: pyproject.toml
	test -x $(INTEROP_VENV)/bin/python || $(PYTHON) -m venv $(INTEROP_VENV)
	$(INTEROP_VENV)/bin/python -c "import torchvision" 2>/dev/null || $(INTEROP_VENV)/bin/pip install --quiet $(INTEROP_TORCH_SPEC)
	$(INTEROP_VENV)/bin/pip install --quiet -e ".[test,interop,onnx]"
	touch $@

# The suite in .venv without the interop tests, then the interop tests in $(INTEROP_VENV), where
# SRGAN_REQUIRE_INTEROP turns a missing extra into a failure instead of a skip.
test: $(VENV)/.installed-test $(INTEROP_VENV)/.installed
	$(BIN)/python -m pytest -q -m "not interop"
	SRGAN_REQUIRE_INTEROP=1 $(INTEROP_VENV)/bin/python -m pytest -q -m interop

clean:
	rm -rf $(VENV) $(INTEROP_VENV) demo .pytest_cache
