# 智能小城 — development and operation shortcuts.
PYTHON ?= python3
VENV ?= .venv
HOST_PORT ?= 127.0.0.1:8000

.PHONY: run serve test

# Set everything up from a fresh clone, build the index and start the server.
run: $(VENV)/bin/gunicorn
	@if [ -f train.py ]; then $(VENV)/bin/python train.py; fi
	@echo "智能小城 demo: http://$(HOST_PORT)/"
	XIAOCHENG_BIND=$(HOST_PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py

$(VENV)/bin/gunicorn: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -e .
	touch $@

# Start gunicorn on an existing environment and index.
serve:
	XIAOCHENG_BIND=$(HOST_PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py

# Install everything the tests need (Chromium, PostgreSQL up, dev packages, axe-core),
# lint and type-check, and run the whole suite, browser tests included, in two
# processes (pytest-xdist; a file's tests stay in one process, so its fixtures are shared).
test:
	./scripts/test-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -n 2 --dist loadfile
