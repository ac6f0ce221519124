# `make demo` and `make test` work from a fresh clone: both create .venv with python3.11 when
# missing and install the package (with dev extras) whenever pyproject.toml or constraints change.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: demo test lint install bench clean

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

# Where the workplace's fixtures sit beside the clone, the demo also checks its models on the real
# fixture clips of its classes; elsewhere it runs without them.
SYNTHACT_FIXTURES ?= $(wildcard ../shared/data)
export SYNTHACT_FIXTURES

demo: $(STAMP)
	$(VENV)/bin/synthact demo --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench

bench: $(STAMP)
	$(PY) bench/render.py
	$(PY) bench/flow.py
	$(PY) bench/train.py

clean:
	rm -rf $(VENV) $(DEMO_OUT)
