# The two commands the README promises: `make demo` and `make test` (and `make lint`, which CI runs too).
# Everything they need is installed here: a virtual environment in .venv and pinned npm packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := tools/node_modules/.installed

.PHONY: demo test venv npm clean lint

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

test: venv npm
	$(PY) -m pytest -q -n 2 --dist loadfile

# mypy strict over migrate and aztwin (the files and settings are in pyproject.toml's [tool.mypy]).
lint: venv
	$(PY) -m mypy

demo: venv
	$(PY) -m migrate demo --out demo-output

clean:
	rm -rf $(VENV) tools/node_modules demo-output .pytest_cache
