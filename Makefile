# Two set-up commands, each self-contained from nothing but python3:
#   make demo   -- create/reuse .venv, install learned-rl, run the main demo
#   make test   -- create/reuse .venv, install learned-rl with the test extra, run the test suite
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench install

TSTAMP := $(VENV)/.installed-test

# the library alone (what the demo needs), then the test extra on top of it
$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e .
	@touch $(STAMP)

$(TSTAMP): $(STAMP)
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $(TSTAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/learned-rl demo

test: $(TSTAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist worksteal

test-slow: $(TSTAMP)
	$(VENV)/bin/python -m pytest -q -n 2 -m slow

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/throughput.py
