# The front door. `make demo` and `make test` work from a fresh clone: they create the
# virtualenv and install what they need (and, as root, the Debian packages the tests use).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
MLMON  := $(VENV)/bin/mlmon
# Two stamps: `make demo` needs only the runtime dependencies; `make test` adds the test extra.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
STAMP  := $(VENV)/.installed-stamp
DEBIAN_PACKAGES := prometheus prometheus-alertmanager docker-compose chromium curl redis-server

.PHONY: venv runtime-venv system-deps demo test soak generate chart-files check-generated bench clean

$(RUNTIME_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

# The dev venv also holds the client (clients/python, its own distribution: docs/clients.md).
$(STAMP): $(RUNTIME_STAMP) clients/python/pyproject.toml
	$(PY) -m pip install --quiet -e '.[test]' -e ./clients/python
	touch $@

runtime-venv: $(RUNTIME_STAMP)
venv: $(STAMP)

# Debian packages the tests use (promtool, amtool, prometheus, alertmanager, docker-compose, headless chromium, curl,
# redis-server for the shared label store).
# Only as root and only when missing; policy-rc.d stops the packages from starting services.
system-deps:
	@if [ "$$(id -u)" = 0 ] && ! (command -v promtool && command -v amtool && command -v docker-compose && command -v chromium && command -v curl && command -v redis-server) >/dev/null; then \
		echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
		[ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES) >/dev/null; \
	fi

demo: runtime-venv
	$(MLMON) demo --config examples/mlmon.yaml

test: venv system-deps
	$(PY) -m pytest -q

# The long versions of bounded suites: 200 SIGTERM trials under load (make test runs a seeded 20).
soak: venv system-deps
	MLMON_SIGTERM_TRIALS=200 $(PY) -m pytest -q tests/test_server_signals.py

generate: venv
	$(MLMON) docs metrics --out docs/metrics.md
	$(MLMON) docs config --out docs/configuration.md
	$(MLMON) config schema --out docs/mlmon.schema.json
	$(MLMON) rules build --config examples/mlmon.yaml --out alert_rules/generated/
	$(MLMON) rules build --config alert_rules/tests/multiclass/mlmon.yaml --out alert_rules/tests/multiclass/generated/
	$(MLMON) dashboards build --config examples/mlmon.yaml --out dashboards/generated/
	$(MLMON) rollouts build --config examples/mlmon.yaml --out deploy/rollouts/
	$(MAKE) chart-files

# The Helm chart embeds copies of the generated rules and dashboards and of the example reference
# profiles, so helm/mlmon stays self-contained for `helm package`; tests/test_helm_chart.py fails
# when a copy differs from its source.
CHART_FILES := helm/mlmon/files
chart-files:
	rm -rf $(CHART_FILES)/rules $(CHART_FILES)/dashboards $(CHART_FILES)/reference
	mkdir -p $(CHART_FILES)/rules $(CHART_FILES)/dashboards $(CHART_FILES)/reference
	cp alert_rules/generated/mlmon_rules.yaml alert_rules/generated/mlmon_alerts.yaml $(CHART_FILES)/rules/
	cp dashboards/generated/*.json $(CHART_FILES)/dashboards/
	cp examples/reference/*.json $(CHART_FILES)/reference/
	cp examples/mlmon.yaml $(CHART_FILES)/mlmon.yaml

bench: venv
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache

# The fuzz suite at 10x its `make test` size: 100,000 seeded requests (MLMON_FUZZ_SEED picks another run).
.PHONY: fuzz
fuzz: venv
	MLMON_FUZZ_REQUESTS=$${MLMON_FUZZ_REQUESTS:-100000} $(PY) -m pytest -q -s tests/test_fuzz.py
