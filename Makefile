# `make demo` and `make test` work from a fresh clone: both create .venv with python3.11 when
# missing and install the package (with dev extras) whenever pyproject.toml or constraints change.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: demo test test-fast lint typecheck docs install bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,mmaction]'
	$(PY) -m pip install -q -c constraints.txt --no-deps mmaction2==1.2.0 mmengine==0.10.7 mmcv-lite==2.1.0
# mediapipe (motions extract) requires opencv-contrib-python and protobuf<5, which would sit beside our
# headless wheel and break tensorboard: installed without them (see constraints.txt)
	$(PY) -m pip install -q -c constraints.txt --no-deps mediapipe==0.10.21 absl-py attrs flatbuffers protobuf matplotlib
	@touch $(STAMP)

# Where the workplace's fixtures sit beside the clone, the demo also runs the real-video experiment at
# toy size on them (ablate --config minihmdb_smoke); elsewhere it runs without them.
SYNTHACT_FIXTURES ?= $(wildcard ../shared/data)
export SYNTHACT_FIXTURES

demo: $(STAMP)
	$(VENV)/bin/synthact demo --out $(DEMO_OUT)

test: $(STAMP) typecheck
	$(PY) -m pytest -q --durations=15

# the loop to run every few minutes (under 3 minutes on 2 cores): every test not marked slow (those
# render, train, or start Ray, torchrun or MediaPipe); a fast test that hangs fails after 5 minutes
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow" --timeout 300 --durations=10

# docs/cli.md from the click commands (tests/test_codebase.py fails while it is stale)
docs: $(STAMP)
	$(PY) -m synthact.cli_docs docs/cli.md

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

# the type hints of src/ (settings in pyproject.toml's [tool.mypy])
typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/render.py
	$(PY) bench/flow.py
	$(PY) bench/train.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
