# rfhunt: `make demo` and `make test` work from a fresh clone with only python3 installed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: demo test test-fast bench bench-rogue venv clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/rfhunt demo --out demo-out

test: $(VENV)/.installed-test
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed-test
	$(PY) -m pytest -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) bench/bench_dsp.py
	$(PY) bench/bench_gsm.py
	$(PY) bench/bench_fm.py
	$(PY) bench/bench_evidence.py
	$(PY) bench/bench_locate.py
	$(PY) bench/bench_ingest.py
	$(PY) bench/bench_goip.py
	$(PY) bench/bench_uplink_links.py

# about an hour of CPU on two cores: calibrate on 60 cities, evaluate on 120 others
bench-rogue: $(VENV)/.installed
	$(PY) bench/bench_rogue.py collect --seeds 1000-1059 --out bench-rogue-calib.json
	$(PY) bench/bench_rogue.py calibrate bench-rogue-calib.json
	$(PY) bench/bench_rogue.py evaluate --seeds 1-120 --out bench-rogue-test.json

clean:
	rm -rf $(VENV) demo-out .pytest_cache *.egg-info
