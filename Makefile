# Sealpost developer commands. Everything installs into ./.venv on demand;
# nothing assumes a global install beyond Python 3.11+, make and a C compiler.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUF    := node_modules/.bin/buf
WEB    := clients/web/protocol
# npm ci writes this file; it is newer than the lock file once node_modules matches it.
WEB_STAMP := $(WEB)/node_modules/.package-lock.json
APP    := clients/web/app
APP_STAMP := $(APP)/node_modules/.package-lock.json

.DEFAULT_GOAL := help
.PHONY: help venv demo test test-unit deploy-check test-integration mutants lint proto bench clean web-test web-build web-bench web-app browser-deps ocr-deps ha-deps

help: ## Show the commands.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: no python3 found; install Python 3.11 or newer" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "error: $(PYTHON) is older than 3.11; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=69,<81"
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

venv: $(STAMP) ## Create .venv and install Sealpost with its development tools.

demo: $(STAMP) web-app ## Start OpenBao and the gateway on loopback and play the scripted day.
	$(BIN)/sealpost demo

# The mutants take about two minutes; the suite has just passed when they run here, so
# their baseline (the same tests, unmutated) is skipped.
test: $(STAMP) browser-deps ocr-deps ha-deps ## Run every test: the web library's, unit and integration (real servers), the mutants.
	$(MAKE) --no-print-directory web-test
	$(BIN)/python -m pytest
	$(BIN)/python -m tests.mutants --no-baseline

test-unit: $(STAMP) ## Run the unit tests only (no servers).
	$(BIN)/python -m pytest tests/unit

# The web interop test runs the web library's compiled driver and the browser tests the built
# app, so both are built first.
test-integration: $(STAMP) web-app browser-deps ha-deps ## Run the integration and browser tests only (real servers, the built web library and app).
	$(BIN)/python -m pytest tests/integration tests/browser

# Offline: hadolint, the compose specification's schema and Kubernetes' schemas come with
# the development tools (pyproject.toml); `make test` runs the same file with the unit tests.
deploy-check: $(STAMP) ## Check the Containerfiles, compose file and Kubernetes manifests (deploy/).
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_deploy_files.py

mutants: $(STAMP) ## Break each security check in turn; every mutant must be killed.
	$(BIN)/python -m tests.mutants

# buf's version is pinned exactly in package.json. No lock file: npm 11 writes one that
# `npm ci` then rejects for buf's per-platform optional packages.
$(BUF): package.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found: buf (proto lint) needs Node.js and npm" >&2; exit 1; }
	npm install --no-package-lock --no-audit --no-fund --loglevel=error
	@touch $@

# The TypeScript protocol library: npm ci installs exactly what its lock file names, from the
# npm registry, with no install scripts.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found: the web library needs Node.js 20 and npm" >&2; exit 1; }
	cd $(WEB) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

# Chromium (and a font with Arabic) for the browser tests, from the operating system's
# packages: installed here when run as root, otherwise the exact command is printed.
BROWSER_PACKAGES := chromium fonts-dejavu-core

browser-deps: ## Install Chromium for the browser tests (apt-get as root; otherwise says what to run).
	@if command -v chromium >/dev/null 2>&1 || test -n "$$SEALPOST_CHROMIUM"; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: the browser tests need Chromium; run: sudo apt-get install $(BROWSER_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	echo "installing $(BROWSER_PACKAGES) with apt-get ..."; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null || \
	{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; }

# Tesseract and its Dutch, English, Arabic, Turkish and Polish data, for the triage of photos
# (text in images): from the operating system's packages, as for Chromium above.
OCR_PACKAGES := tesseract-ocr tesseract-ocr-nld tesseract-ocr-eng tesseract-ocr-ara tesseract-ocr-tur tesseract-ocr-pol
OCR_LANGUAGES := nld eng ara tur pol

ocr-deps: ## Install Tesseract and its language data for triage (apt-get as root; otherwise says what to run).
	@missing=0; langs="$$(tesseract --list-langs 2>/dev/null)"; \
	for l in $(OCR_LANGUAGES); do echo "$$langs" | grep -qx "$$l" || missing=1; done; \
	if [ "$$missing" -eq 0 ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: triage reads text in photos with Tesseract; run: sudo apt-get install $(OCR_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	echo "installing $(OCR_PACKAGES) with apt-get ..."; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(OCR_PACKAGES) >/dev/null || \
	{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(OCR_PACKAGES) >/dev/null; }

# etcd, the configuration store Patroni keeps the PostgreSQL cluster's leader lock in, for the
# failover test (docs/operations.md section 9): from the operating system's packages, as for
# Chromium above. The test starts its own etcd on free loopback ports with a temporary data
# folder; on a host run by systemd the package also starts a system etcd, which it leaves alone.
HA_PACKAGES := etcd-server

ha-deps: ## Install etcd for the PostgreSQL failover test (apt-get as root; otherwise says what to run).
	@if command -v etcd >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "error: the PostgreSQL failover test needs etcd; run: sudo apt-get install $(HA_PACKAGES)" >&2; \
		exit 1; \
	fi; \
	echo "installing $(HA_PACKAGES) with apt-get ..."; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(HA_PACKAGES) >/dev/null || \
	{ apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(HA_PACKAGES) >/dev/null; }

# The web app depends on the library through "file:../protocol": it is built first.
$(APP_STAMP): $(APP)/package.json $(APP)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "error: npm not found: the web app needs Node.js 20 and npm" >&2; exit 1; }
	cd $(APP) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

web-test: $(WEB_STAMP) $(APP_STAMP) ## The web library and app: generated code, typecheck, lint, format, vectors, catalogues.
	cd $(WEB) && npm run --silent check
	cd $(APP) && npm run --silent check

web-build: $(WEB_STAMP) ## Build the web library into clients/web/protocol/dist.
	cd $(WEB) && npm run --silent build

web-app: web-build $(APP_STAMP) ## Build the relatives' web app into clients/web/app/dist.
	cd $(APP) && npm run --silent build

web-bench: $(STAMP) web-build ## Seal 1 KiB and 2 MiB with the web library, next to the Python SDK.
	$(BIN)/python -m bench web

lint: $(STAMP) $(BUF) ## ruff, mypy --strict and buf lint; fails on any finding.
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd proto && ../$(BUF) lint

proto: $(STAMP) $(WEB_STAMP) ## Regenerate sealpost/v1 and the web library's src/gen from proto/.
	$(BIN)/python proto/generate.py
	cd $(WEB) && npm run --silent generate

bench: $(STAMP) web-app ## Run the benchmarks; figures go to the terminal and bench/results.json.
	$(BIN)/python -m bench

clean: ## Remove the virtual environment, node_modules and caches.
	rm -rf $(VENV) node_modules $(WEB)/node_modules $(WEB)/dist $(APP)/node_modules $(APP)/dist $(APP)/build .mypy_cache .ruff_cache .pytest_cache .hypothesis build *.egg-info
