# make demo | make test | make bench | make lint — each bootstraps .venv (and the npm servers) itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-deep lint bench unit clean servers

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,dev,plot,bench,prometheus,otel]'
	@touch $@

servers: $(STAMP)
	$(PY) -c "from streamkit.local.npm import ensure_installed; print('local servers in', ensure_installed().root)"

lint: $(STAMP)
	$(VENV)/bin/ruff check streamkit producer dispatcher tests bench
	$(VENV)/bin/mypy

test: lint servers
	$(PY) -m pytest -q -p no:cacheprovider

# The state machines of the consumer and the emulator, explored far longer than in `make test`.
test-deep: $(STAMP)
	STREAMKIT_DEEP=1 $(PY) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/unit/test_consumer_stateful.py tests/unit/test_emulator_stateful.py tests/unit/test_handoff_stateful.py

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

demo: $(STAMP) servers
	$(VENV)/bin/streamkit demo

bench: $(STAMP) servers
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; echo; done

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
