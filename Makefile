# sim2real workspace: `make demo` runs the main job on the embedded default, `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.requirements-installed
# ROS 2 Jazzy (franka_ros2's line) beside Kilted: its own venv with Jazzy's rclpy and messages, every other
# package taken from .venv through a .pth file; the node tests run in both.
JAZZY ?= .venv-jazzy
JAZZY_INSTALLED := $(JAZZY)/.requirements-installed
# Everything after setup runs inside the venv with the colcon workspace sourced.
WS := source $(VENV)/bin/activate && source install/setup.bash &&
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: setup system-packages build lint test test-kilted test-jazzy test-franka demo demo-quick demo-survey bench \
  bench-ppo-libraries clean

setup: system-packages $(INSTALLED) build

# Offscreen rendering of the workspace camera: EGL with Mesa's software rasterizer (Debian 12), installed unless present.
SYSTEM_PACKAGES := libegl1 libegl-mesa0 libgl1-mesa-dri
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
system-packages:
	@dpkg -s $(SYSTEM_PACKAGES) > /dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); }

$(INSTALLED): requirements.txt requirements-nonros.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

build: $(INSTALLED)
	mkdir -p log
	source $(VENV)/bin/activate && colcon build --symlink-install --base-paths src \
	  > log/build.txt 2>&1 || { cat log/build.txt; exit 1; }

$(JAZZY_INSTALLED): requirements-jazzy.txt $(INSTALLED)
	test -x $(JAZZY)/bin/python || python3 -m venv $(JAZZY)
	$(JAZZY)/bin/python -m pip install --quiet -r requirements-jazzy.txt
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
	  "$$($(JAZZY)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz_sim2real_venv.pth"
	touch $@

test: lint test-kilted test-jazzy

# ruff.toml: pyflakes, pycodestyle and import order.
lint: setup
	$(WS) ruff check .

test-kilted: setup
	$(WS) python -m pytest $(PYTEST_ARGS)

# Only the 1 kHz franka emulation against the real stack over DDS (part of `make test` too).
test-franka: setup
	$(WS) python -m pytest -m franka_stack -s $(PYTEST_ARGS)

# The node tests (separate processes over DDS) against ROS 2 Jazzy's rclpy; the workspace is pure Python.
# Left out: the quick demo (slow).
test-jazzy: setup $(JAZZY_INSTALLED)
	$(WS) $(JAZZY)/bin/python -c "import rclpy, importlib.metadata as m; print('ROS 2 Jazzy: rclpy', m.version('ros-jazzy-rclpy'))"
	$(WS) $(JAZZY)/bin/python -m pytest src/sim2real_ros/test src/sim2real/test/test_policy_commands.py -m "not slow" $(PYTEST_ARGS)

demo: setup
	$(WS) sim2real demo --out $(DEMO_OUT)

demo-quick: setup
	$(WS) sim2real demo --quick --out $(DEMO_OUT)

# The demo with the survey's rows (ADR, active DR, a memory policy, SimOpt) and the camera's vision stage.
demo-survey: setup
	$(WS) sim2real demo --survey --out $(DEMO_OUT)-survey

bench: setup
	$(WS) python bench/run.py

# Stable-Baselines3 and rsl_rl for the PPO comparison only, beside the venv rather than in it.
bench-ppo-libraries: setup
	$(PY) -m pip install --quiet --no-deps --target build/ppo-libraries -r bench/requirements-ppo-libraries.txt
	$(WS) python bench/run.py ppo_libraries

clean:
	rm -rf build install log out $(JAZZY)
