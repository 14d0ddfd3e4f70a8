# cnnbook: two commands for a newcomer.
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run the whole test suite, notebooks included
# Also: make install | data | book [PROFILE=smoke|cpu|full] | assignments | notebooks | clean

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= cpu
JOBS    ?= auto
STAMP   := $(VENV)/.installed-stamp

# The local dataset mirror, when the machine has one beside the project (CI does).
MIRROR := $(abspath ../shared/datasets)
ifneq ($(wildcard $(MIRROR)/README.md),)
export CNNBOOK_DATA_MIRROR ?= $(MIRROR)
endif
# nbgrader and jupyter shell out to tools found on PATH: use the venv's.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: install data lab test unit book assignments notebooks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "cnnbook needs Python 3.10 or newer")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.1"
	$(PY) -m pip install --quiet -e ".[dev]"
	# d2l 1.0.3 pins 2023 releases of numpy, matplotlib, pandas and scipy exactly (==), which
	# would downgrade the whole environment; install it alone and rely on the packages above
	# for what it imports (numpy, pandas, requests, scipy, matplotlib-inline, IPython).
	$(PY) -m pip install --quiet --no-deps "d2l>=1.0.3,<2"
	touch $(STAMP)

data: $(STAMP)
	$(PY) -m cnnbook.data

lab: install data
	$(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

# Unit tests and every notebook (smoke profile) in one pytest run, spread over the cores;
# --dist loadfile keeps each notebook's cells on one worker, in order.
test: install data
	CNNBOOK_PROFILE=smoke $(PY) -m pytest -n $(JOBS) --dist loadfile --nbval-lax \
	    --nbval-cell-timeout=600 notebooks tests

unit: install
	$(PY) -m pytest -n $(JOBS) --dist loadfile tests

# Execute every notebook with papermill into build/notebooks/ and write the results table.
book: install data
	$(PY) tools/book.py --profile $(PROFILE)

# Student versions of every chapter (nbgrader) in build/course/release/.
assignments: install
	$(PY) tools/assignments.py --course build/course

# Rebuild the .ipynb files from their jupytext sources in notebooks/src/.
notebooks: install
	$(PY) tools/notebooks.py build

clean:
	rm -rf build .pytest_cache notebooks/.ipynb_checkpoints
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Mutation testing of the core (minutes, not part of `make test`; CONTRIBUTING.md): the
# curated realistic bugs of tools/mutants.py, then mutmut's every mutant of $(MUTATE).
MUTATE ?= pooling activations
.PHONY: mutants
mutants: install
	$(PY) tools/mutants.py
	$(PY) tools/mutants.py --broad $(MUTATE)
