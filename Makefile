# Two commands on a fresh machine:  make book   (set-up + data + every chapter + HTML)
#                                   make test   (set-up + the test suite)
# Editing chapters:                 make lab    (JupyterLab on book/chapters, outputs kept out of git)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PROFILE ?= default
STAMP  := $(VENV)/.installed
# pytest-xdist workers of make test: two on this project's 2-core machines (auto: one per core)
# (--durations: the 15 slowest tests end the output, for keeping make test within its 10 minutes)
TEST_WORKERS ?= 2
# make bench: auto measures on the GPU when torch sees one (results under benchmarks/results/cuda/)
BENCH_DEVICE ?= auto
# the pip that installs the lock, and the pip-tools that writes it (make lock)
PIP_VERSION := 26.3
PIP_TOOLS_VERSION := 7.5.2

.PHONY: book test test-fast data bench gpu-check clean-build lab git-filter check-html lock

# pip compiles what it installs to bytecode on one core; compileall does it on every core (the
# set-up took 93 to 101 s instead of 121 s on 2). Bytecode only saves time: a file that does not
# compile for this Python (torch ships Python 3.12-only test helpers; pip skips them too) is never
# imported, so compile_dir's result is not checked.
# The environment is installed from requirements.lock: every package (not only the ones
# requirements.txt names) at the version tested here, each file checked against its sha256.
$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet pip==$(PIP_VERSION)
	$(PY) -m pip install --quiet --no-compile --require-hashes -r requirements.lock
	$(PY) -c "import compileall, sysconfig; compileall.compile_dir(sysconfig.get_paths()['purelib'], quiet=2, workers=0)"
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

data: $(STAMP)
	$(VENV)/bin/robinterp data fetch mnist fashion_mnist

book: data
	$(VENV)/bin/robinterp book --profile $(PROFILE)
	@echo "open _build/html/index.html"

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

bench: $(STAMP)
	$(PY) -m pip install --quiet --no-deps -r benchmarks/requirements.txt
	$(PY) benchmarks/run.py --device $(BENCH_DEVICE) $(BENCH)

# On a machine with a GPU: the benchmarks on CUDA, the CUDA tests and every chapter (smoke) there
gpu-check: data
	$(PY) -m pip install --quiet --no-deps -r benchmarks/requirements.txt
	PY=$(PY) benchmarks/gpu_check.sh

# Saving a chapter from JupyterLab must not put outputs or execution counts into git: the
# .gitattributes filter strips them on `git add` (cell ids kept, they are the chapters' anchors).
git-filter:
	git config filter.nbstripout.clean '"$(abspath $(PY))" -m nbstripout --keep-id'
	git config filter.nbstripout.smudge cat
	git config filter.nbstripout.required true
	git config diff.ipynb.textconv '"$(abspath $(PY))" -m nbstripout --keep-id -t'

lab: $(STAMP) git-filter
	$(VENV)/bin/jupyter lab --notebook-dir=book/chapters

# the built book in headless Chromium (apt-get install chromium): console errors, broken links and
# images, figures without alt text, tables wider than the page, untypeset math; screenshots in
# _build/screenshots/ (the smoke book gets the same check in make test)
check-html: $(STAMP)
	$(PY) -m robinterp.check_html _build/html

# after editing requirements.txt: resolve it again into requirements.lock (keeping every pin it
# can), with the hashes of every file of each version on the indexes pip sees; pip-tools runs in a
# venv of its own so that it never enters the book's environment
lock:
	test -x .venv-lock/bin/pip-compile || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet pip-tools==$(PIP_TOOLS_VERSION))
	CUSTOM_COMPILE_COMMAND="make lock" .venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --output-file requirements.lock requirements.txt

clean-build:
	rm -rf _build
