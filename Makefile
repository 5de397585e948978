# handdiff: every target sets up .venv first (idempotent: a stamp keyed on the
# dependency spec means a second run with an up-to-date venv installs nothing).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q
DEPS_HASH := $(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
# torch and torchvision go in first and alone: pip takes them from local disk
# where the machine has them, and the rest then resolves against them.
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test bench lock clean

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -c requirements.lock $(TORCH)
	$(PIP) -c requirements.lock -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/handdiff demo

# the lint gate first (seconds), then the tests
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m benchmarks

# Re-resolve from pyproject.toml and rewrite the lock (needs the package registries).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q $(TORCH) && .venv-lock/bin/pip install -q -e '.[dev]'
	{ echo "# Fully resolved dependency set (pip freeze, Python 3.11, x86_64), used as pip constraints by the Makefile."; \
	  echo "# Regenerate with: make lock"; \
	  .venv-lock/bin/pip freeze --exclude-editable | grep -v '^handdiff'; } > requirements.lock
	rm -rf .venv-lock

clean:
	rm -rf runs mlruns logs .handdiff .pytest_cache
