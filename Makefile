# Two commands on a fresh machine (Python 3.11+ and apt only):
#   make report   build .venv, create the demo warehouse if absent, run the reports into outputs/
#   make test     build .venv with the test extras and run the whole suite (pytest + nbval)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
WAREHOUSE ?= data/crm.duckdb

.PHONY: report test venv lint bench clean demo

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "crmlib needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version)"; exit 1; }
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv module missing: installing Debian's python3-venv"; \
	  apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	@$(PIP) install -U pip

# rfc3987-syntax comes in through jupyter-events' jsonschema[format-nongpl] and builds ~39 Lark parsers
# when jsonschema is imported: ~1.3 s in every kernel (plotly's renderers import nbformat, which imports
# jsonschema). No schema here uses the "iri" formats it checks, so it is removed (jsonschema skips those
# checks without it; python-jsonschema/jsonschema#1428). tests/test_environment.py checks it stays out.
DROP   := rfc3987-syntax

# Stamps re-install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing crmlib into $(VENV) ..."
	@$(PIP) install -e . 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
	@$(PIP) uninstall -y $(DROP) 2>/dev/null || true
	@$(BIN)/python -c "import crmlib" && touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "installing crmlib with test extras into $(VENV) ..."
	@$(PIP) install -e '.[test]' 2>&1 | grep -v -E "^WARNING: Location|is ignored" || true
	@$(PIP) uninstall -y $(DROP) 2>/dev/null || true
	@$(BIN)/python -c "import crmlib, pytest, nbval" && touch $@ $(VENV)/.installed

venv: $(VENV)/.installed

$(WAREHOUSE): | $(VENV)/.installed
	$(BIN)/crmlib data demo --out $(WAREHOUSE)

demo: $(VENV)/.installed
	$(BIN)/crmlib data demo --out $(WAREHOUSE)

report: $(VENV)/.installed $(WAREHOUSE)
	$(BIN)/crmlib report run --source $(WAREHOUSE)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check crmlib tests bench

# Each bench script says which peer it needs (pandas, lifetimes, ChannelAttribution are bench-only installs).
bench: $(VENV)/.installed-test
	for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
