# dinosr-espnet: `make install`, `make test`, `make demo`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
KENLM := tools/kenlm
PYTEST_ARGS ?=

.PHONY: install python-env debian-packages kenlm test demo demo-full clean help

help:
	@echo "make install  - venv (.venv) with pinned deps, Debian packages, KenLM lmplz/build_binary in $(KENLM)"
	@echo "make test     - install, then run the test suite"
	@echo "make demo     - install, then run the synthetic-corpus recipe, stages 1-8, on CPU"
	@echo "make demo-full - the complete comparison: scratch, scratch3x, data2vec, dinosr, dinosr_reseed x 10m, 1h"

install: python-env debian-packages kenlm

# The stamp depends on setup.py, so a second `make install` does nothing unless the pins changed.
python-env: $(VENV)/.installed
$(VENV)/.installed: setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Pinned: pip 26 refuses espnet's dependency ci_sdr (a git URL in its "all" extra), pip 23.2.1 installs it.
	$(PIP) install --quiet "pip==23.2.1"
	$(PIP) install -e '.[test]'
	touch $@

debian-packages:
	utils/install_debian_packages.sh

kenlm: python-env debian-packages
	utils/build_kenlm.sh $(PIP) $(KENLM)

test: install
	OMP_NUM_THREADS=2 $(PY) -m pytest tests $(PYTEST_ARGS)

demo: install
	cd egs/synth/dinosr1 && ./run.sh --stage 1 --stop_stage 8

# Every init x {10m, 1h} x 2 seeds, Viterbi and 4-gram (egs/synth/dinosr1/run_full.sh); reuses what make demo did.
demo-full: install
	cd egs/synth/dinosr1 && ./run_full.sh --stage 1 --stop_stage 8

clean:
	rm -rf $(VENV) tools *.egg-info
