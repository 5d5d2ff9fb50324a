# Two set-up commands, each self-contained from nothing but python3:
#   make demo   -- create/reuse .venv, install learned-rl, run the main demo
#   make test   -- create/reuse .venv, install learned-rl with test extras, run the test suite
PYTHON ?= python3
VENV   ?= .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow bench install

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/learned-rl demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2

test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 -m slow

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/throughput.py
