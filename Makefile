# The two commands the README promises: `make demo` and `make test` (and `make lint`, which CI runs too).
# Everything they need is installed here: a virtual environment in .venv and pinned npm packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := tools/node_modules/.installed
# The Azure CLI, pinned, in an environment of its own: it pins its own Azure SDK versions, which must not meet
# sfmigrate's in .venv. tests/azcli runs every `az` line of runbooks/ with it against the twin (about 1.5 min to install, once).
AZ_CLI_VERSION := 2.91.0
AZ_VENV := .venv-az
AZ_STAMP := $(AZ_VENV)/.installed-$(AZ_CLI_VERSION)

.PHONY: demo test venv npm az-env chromium clean lint

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

npm: $(NPM_STAMP)

$(NPM_STAMP): tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund --loglevel=error
	@touch $(NPM_STAMP)

az-env: $(AZ_STAMP)

$(AZ_STAMP):
	@test -x $(AZ_VENV)/bin/python || $(PYTHON) -m venv $(AZ_VENV)
	$(AZ_VENV)/bin/python -m pip install --quiet 'azure-cli==$(AZ_CLI_VERSION)'
	@touch $(AZ_STAMP)

# Debian's chromium renders the HTML reports headless in tests/report_browser (issue 14): installed with apt-get when
# missing (as root, or through sudo); when it cannot be, those tests fail and say why.
APT_CHROMIUM := env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "make: chromium is missing and this user cannot apt-get install it (tests/report_browser will fail)"; exit 0; fi; \
	  $$SUDO $(APT_CHROMIUM) || { $$SUDO apt-get update -q && $$SUDO $(APT_CHROMIUM); } \
	    || echo "make: could not install chromium (tests/report_browser will fail)"; }

test: venv npm az-env chromium
	$(PY) -m pytest -q -n 2 --dist loadfile

# mypy strict over migrate and aztwin (the files and settings are in pyproject.toml's [tool.mypy]).
lint: venv
	$(PY) -m mypy

demo: venv
	$(PY) -m migrate demo --out demo-output

clean:
	rm -rf $(VENV) $(AZ_VENV) tools/node_modules demo-output .pytest_cache
