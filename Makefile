# cnnbook: two commands for a newcomer.
#   make lab    set everything up and open the course in JupyterLab
#   make test   set everything up and run the whole test suite, notebooks included
# Also: make install | data | book [PROFILE=smoke|cpu|full] | rehearse | notebooks | clean
# Homework (README, "For teachers"): make assignments | collect A=NN_topic ZIP=file.zip |
#   grade A=NN_topic | grades | student-edition [OUT=folder] | grading-check

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

.PHONY: install data lab test unit book rehearse assignments collect grade grades student-edition grading-check notebooks clean

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
# --dist loadfile keeps each notebook's cells on one worker, in order. tests/homework grades
# every chapter's blank, solution and cheats in one kernel each (cnnbook.grading.onekernel),
# dealt into four files of about equal time so that the workers share them.
test: install data
	CNNBOOK_PROFILE=smoke $(PY) -m pytest -n $(JOBS) --dist loadfile --nbval-lax \
	    --nbval-cell-timeout=600 notebooks tests

unit: install
	$(PY) -m pytest -n $(JOBS) --dist loadfile tests

# Execute every notebook with papermill into build/notebooks/ and write the results table.
book: install data
	$(PY) tools/book.py --profile $(PROFILE)

# Every notebook with the full profile's knobs but every loop capped to $(BATCHES) batches
# (epochs, benchmark repeats) on the CPU, two at a time: each shape and code path of the
# GPU profile, in minutes. Writes only to build/rehearse/ (tools/rehearse.py).
BATCHES ?= 2
rehearse: install data
	$(PY) tools/rehearse.py --batches $(BATCHES)

# Homework with nbgrader. The course folder (gradebook, submissions, feedback) lives in
# $(COURSE), outside build/, so `make clean` never deletes grades. Grading needs the datasets.
COURSE ?= course
OUT    ?= student-edition

# Student versions of every chapter (or CH="05 06") in $(COURSE)/release/.
assignments: install data
	$(PY) tools/assignments.py release --course $(COURSE) $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS)) $(CH)

# Unpack a zip of <student>/<notebook>.ipynb into $(COURSE)/submitted/<student>/$(A)/.
collect: install
	@test -n "$(A)" -a -n "$(ZIP)" || { echo "usage: make collect A=NN_topic ZIP=submissions.zip"; exit 2; }
	$(PY) tools/assignments.py collect --course $(COURSE) $(A) $(ZIP)

# Autograde every submission of one chapter (smoke profile), then write the feedback.
grade: install data
	@test -n "$(A)" || { echo "usage: make grade A=NN_topic (e.g. A=02_convolution_math)"; exit 2; }
	$(PY) tools/assignments.py grade --course $(COURSE) $(A)

# The gradebook as CSV: $(COURSE)/grades.csv.
grades: install
	$(PY) tools/assignments.py export --course $(COURSE)

# The course without any solution, to hand out or push to a class repository.
student-edition: install
	$(PY) tools/assignments.py student --out $(OUT)

# Every chapter's blank, solution and cheat submissions through autograde (slow: minutes).
grading-check: install data
	CNNBOOK_GRADE_ALL=1 $(PY) -m pytest -q -n $(JOBS) tests/test_cheats.py

# Rebuild the .ipynb files from their jupytext sources in notebooks/src/.
notebooks: install
	$(PY) tools/notebooks.py build

# The HTML book (build/site/$(PROFILE)/index.html) of the notebooks `make book PROFILE=$(PROFILE)`
# executed, with the results table: Sphinx + myst-nb, offline (tools/site.py). Run make book first.
.PHONY: site
site: install
	$(PY) tools/site.py --profile $(PROFILE)

clean:
	rm -rf build .pytest_cache notebooks/.ipynb_checkpoints
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Mutation testing of the core (not part of `make test`; CONTRIBUTING.md): the curated
# realistic bugs of tools/mutants.py, then mutmut's every mutant of $(MUTATE), the modules
# whose every survivor is killed or listed (equivalent, or accepted): 3,799 mutants, about
# two hours on the busy 2-core machine by the per-module times measured one by one
# (CONTRIBUTING.md); `make mutants MUTATE=loop` runs one module (loop: 43 minutes).
MUTATE ?= loop loader resnet googlenet registry pooling activations profiling widgets_base
.PHONY: mutants
mutants: install
	$(PY) tools/mutants.py
	$(PY) tools/mutants.py --broad $(MUTATE)
