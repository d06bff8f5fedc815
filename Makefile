# Two set-up commands, on a fresh machine:  make demo   and   make test
# Both create .venv in the repository root and install panhuo into it (pinned by constraints.txt).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.panhuo-installed
SIZE   ?= 1000000
CUSTOMERS ?= 100000

.PHONY: install chromium demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[spark,test]'
	touch $(STAMP)

install: $(STAMP) chromium

# The console's browser test (tests/service/browser/) drives Debian's chromium through Playwright; it is
# installed with apt, never with 'playwright install' (nothing is downloaded at test time).
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y chromium || (apt-get update && apt-get install -y chromium); \
	elif command -v sudo >/dev/null 2>&1; then sudo apt-get install -y chromium || \
	  (sudo apt-get update && sudo apt-get install -y chromium) || \
	  echo "make: could not install chromium with sudo; run 'apt-get install -y chromium' as root (the browser test is skipped until then)"; \
	else echo "make: /usr/bin/chromium is missing and neither root nor sudo is available: run 'apt-get install -y chromium' as root (the browser test is skipped until then)"; fi

demo: install
	$(VENV)/bin/panhuo demo --customers $(CUSTOMERS)

test: install
	$(PY) -m pytest -q -n 2

bench: install
	$(PY) benchmarks/run.py --customers $(SIZE)

clean:
	rm -rf $(VENV) .panhuo .pytest_cache
