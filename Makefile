# make demo | make test | make bench | make lint — each bootstraps .venv (and the npm servers) itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-deep lint bench unit clean servers java browser screenshots

# Two makes at once in one clone (parallel CI steps, a test run beside a demo) take turns under a lock; a venv
# without a working pip (creation interrupted) is created again, and the stamp is written only after the install.
$(STAMP): pyproject.toml
	@flock $(VENV).lock sh -c '\
	  test $(STAMP) -nt pyproject.toml && exit 0; \
	  $(PY) -m pip --version >/dev/null 2>&1 || $(PYTHON) -m venv --clear $(VENV) || exit 1; \
	  $(PY) -m pip install --quiet --upgrade pip && \
	  $(PY) -m pip install --quiet -e ".[cli,dev,plot,bench,prometheus,otel,console]" && touch $(STAMP)'

servers: $(STAMP)
	$(PY) -c "from streamkit.local.npm import ensure_installed; print('local servers in', ensure_installed().root)"

lint: $(STAMP)
	$(VENV)/bin/ruff check streamkit producer dispatcher tests bench
	$(VENV)/bin/mypy

# Java 17 for the real-KCL interop test (tests/e2e/test_jvm_kcl_interop.py): installed with apt-get when
# missing (one install at a time); if that cannot work, the test fails saying so, never skips.
java: $(STAMP)
	@$(PY) -c "from streamkit.local.jvm_kcl import java_executable; java_executable()" 2>/dev/null || \
	  { command -v apt-get >/dev/null && flock /tmp/streamkit-apt.lock sh -c \
	    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null'; } || \
	  echo "Java 17 could not be installed: the JVM KCL interop test will fail saying so"

test: lint servers java browser
	$(PY) -m pytest -q -p no:cacheprovider

# Debian's chromium and chromedriver for the console's browser test (apt-get as root, under the apt lock);
# if that cannot work, the test fails saying so, never skips.
browser:
	@bash tests/browser/install-chromium.sh || echo "chromium could not be installed: the console's browser test will fail saying so"

# The README's screenshot of the console (docs/console.png), made against a fresh local stack.
screenshots: $(STAMP) servers browser
	$(PY) -m tests.browser.screenshot docs/console.png

# The state machines (consumer, emulator, handoff, producer) and the signal matrix, explored far longer than in `make test`.
test-deep: $(STAMP)
	STREAMKIT_DEEP=1 $(PY) -m pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/unit/test_consumer_stateful.py tests/unit/test_emulator_stateful.py tests/unit/test_handoff_stateful.py \
		tests/unit/test_producer_stateful.py \
		tests/e2e/test_signal_matrix.py

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

demo: $(STAMP) servers
	$(VENV)/bin/streamkit demo

bench: $(STAMP) servers
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; echo; done

clean:
	rm -rf $(VENV) $(VENV).lock demo-output .pytest_cache .mypy_cache .ruff_cache
