# make book: set up, reproduce the book at PROFILE (default cpu): every chapter × its default seeds in parallel on
#            a local Ray (finished runs kept), then the intro and report pages, then the HTML book.
# make test: set up, run every test (unit tests, smoke-profile chapters under nbval, claims, book build, Ray).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= cpu
STAMP := $(VENV)/.installed

.PHONY: install book html test test-fast chapter sweep ratio-sweep clean bench bench-peer

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# make book PROFILE=smoke SEEDS=0-1 ARGS="--force --address HOST:6379 --device cuda"
book: $(STAMP)
	$(PY) -m ebmflow reproduce --profile $(PROFILE) $(if $(SEEDS),--seeds $(SEEDS)) $(ARGS)

html: $(STAMP)
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# make chapter NAME=01_motivating_example ARGS="-p epochs=5 --seed 3"
chapter: $(STAMP)
	$(PY) -m ebmflow run $(NAME) --profile $(PROFILE) $(ARGS)

# make sweep NAME=01_motivating_example SEEDS=0-4
sweep: $(STAMP)
	$(PY) -m ebmflow sweep $(NAME) --profile $(PROFILE) --seeds $(or $(SEEDS),0-2) $(ARGS)

# make ratio-sweep PROFILE=cpu ARGS="--address HOST:6379": Figure 1's ratio from 1:1 to 19:1 (book/09_ratio_sweep):
# prints and runs, one after another, the commands that page documents: for each ratio
#   ebmflow sweep 01_motivating_example --profile P --seeds 0-2 -p weights=1/20,19/20 -p epochs=2
# (ARGS go to each sweep), then `ebmflow run 09_ratio_sweep --profile P`. About 4 CPU-minutes at PROFILE=cpu.
ratio-sweep: $(STAMP)
	$(PY) -m ebmflow.experiments.ratio_sweep --profile $(PROFILE) $(ARGS)

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf _build book/figures

# make bench: our kernels alone (results/ours.json, the MALA profile); make bench-peer: flowMC (JAX, CPU) installed
# into its own environment benchmarks/.venv-peer, and both sides measured alternately (results/side_by_side.json)
bench: $(STAMP)
	$(PY) benchmarks/bench.py

bench-peer: $(STAMP)
	test -x benchmarks/.venv-peer/bin/python || $(PYTHON) -m venv benchmarks/.venv-peer
	benchmarks/.venv-peer/bin/python -m pip install -q -r benchmarks/requirements-peer.txt
	$(PY) benchmarks/side_by_side.py --peer-python benchmarks/.venv-peer/bin/python
