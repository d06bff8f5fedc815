# Two set-up commands, on a fresh machine:  make demo   and   make test
# Both create .venv in the repository root and install panhuo into it (pinned by constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.panhuo-installed
SIZE   ?= 1000000
CUSTOMERS ?= 100000

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[spark,test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/panhuo demo --customers $(CUSTOMERS)

test: install
	$(PY) -m pytest -q -n 2

bench: install
	$(PY) benchmarks/run.py --customers $(SIZE)

clean:
	rm -rf $(VENV) .panhuo .pytest_cache
