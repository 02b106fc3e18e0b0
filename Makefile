# mlgate: `make demo` bakes and runs the default project; `make test` runs every test.
SHELL := /bin/bash
TOOLS := $(CURDIR)/.tools
DEMO := $(CURDIR)/build/demo
export PATH := $(TOOLS)/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export DVC_NO_ANALYTICS := 1
# Bytecode is written even where the shell says not to: the tests start hundreds of Python
# processes in fresh venvs, and each would compile MLflow and scikit-learn from source.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo test test-fast lint docs bench tools clean

# uv: the one on PATH, unless it is missing or a pyenv shim (a shim follows a baked
# project's .python-version and then may not find uv); else a private copy from PyPI.
$(TOOLS)/bin/uv:
	@mkdir -p $(TOOLS)/bin
	@real=$$(command -v uv 2>/dev/null); \
	case "$$real" in \
	  ""|*/shims/*) python3 -m venv $(TOOLS)/venv && $(TOOLS)/venv/bin/python -m pip install --quiet uv \
	                && ln -sf $(TOOLS)/venv/bin/uv $@ ;; \
	  *) ln -sf "$$real" $@ ;; \
	esac
	@$@ --version

.venv/.synced: $(TOOLS)/bin/uv pyproject.toml uv.lock
	uv sync --locked
	@touch $@

tools: .venv/.synced

demo: tools  ## bake the default answers into build/demo/ml-project (its first run: dvc repro), then gate, register, canary and promote
	rm -rf $(DEMO)
	uv run cookiecutter --no-input --output-dir $(DEMO) .
	cd $(DEMO)/ml-project && $(MAKE) baseline  # done by the bake: here it only shows that nothing is left to run
	@echo "Test-set metrics of the model and of a trivial baseline ($(DEMO)/ml-project/metrics.json):"
	@cat $(DEMO)/ml-project/metrics.json
	cd $(DEMO)/ml-project && $(MAKE) report BASE=HEAD POLICY=workspace && $(MAKE) register && $(MAKE) canary CANARY_ARGS=--promote && $(MAKE) status
	@echo "Serve the champion: cd $(DEMO)/ml-project && make serve"

test: tools  ## every template test, the slow bakes included
	uv run pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

test-fast: tools  ## template tests without the slow bakes
	uv run pytest -m "not slow"

lint: tools  ## ruff and mypy on the template's own Python (a baked project lints itself)
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy

docs: tools  ## the README's answers table, from cookiecutter.json's defaults and _help
	uv run python tools/answers_table.py

bench: tools  ## timings of bake, install, repro, tests, the PR loop, serving, the gate's noise check and batch scoring (see benchmarks/)
	uv run python benchmarks/bench_skeleton.py
	uv run python benchmarks/bench_pr_loop.py
	uv run python benchmarks/bench_serving.py
	uv run python benchmarks/bench_cli.py
	uv run python benchmarks/bench_gate_noise.py
	uv run python benchmarks/bench_batch.py

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache
