# sim2real workspace: `make demo` runs the main job on the embedded default, `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.requirements-installed
# Everything after setup runs inside the venv with the colcon workspace sourced.
WS := source $(VENV)/bin/activate && source install/setup.bash &&
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: setup build test demo demo-quick bench clean

setup: $(INSTALLED) build

$(INSTALLED): requirements.txt requirements-nonros.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

build: $(INSTALLED)
	mkdir -p log
	source $(VENV)/bin/activate && colcon build --symlink-install --base-paths src \
	  > log/build.txt 2>&1 || { cat log/build.txt; exit 1; }

test: setup
	$(WS) python -m pytest $(PYTEST_ARGS)

demo: setup
	$(WS) sim2real demo --out $(DEMO_OUT)

demo-quick: setup
	$(WS) sim2real demo --quick --out $(DEMO_OUT)

bench: setup
	$(WS) python bench/run.py

clean:
	rm -rf build install log out
