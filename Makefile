# Every target installs what it needs into .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test quality demo bench reproduce reproduce-accelerated reproduce-data-size reproduce-vote-variants tokenizer clean experiments

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2

quality: $(STAMP)
	$(BIN)/ruff check src tests recipes benchmarks scripts examples
	$(BIN)/ruff format --check src tests recipes benchmarks scripts examples
	$(BIN)/lint-imports --no-cache

# Regenerates tokenizer/ bit-for-bit from si_hf.tokenization.
tokenizer: $(STAMP)
	$(BIN)/python scripts/build_tokenizers.py --output_dir tokenizer

# Ends with the report (markdown + PNG figures) and how to load the final model and a round's data.
demo: $(STAMP)
	$(BIN)/accelerate launch --config_file accelerate_configs/cpu.yaml recipes/run_round.py --config recipes/copy/config_cpu.yaml
	$(BIN)/si-hf report outputs/copy/cpu --output_dir outputs/copy/cpu/report

# The CPU reproduction recipes under 3 seeds each, then the votes of reverse addition, forward addition and multiplication
# over their seeds' round-0 models,
# with reports and summaries (hours; never in CI):
# outputs/reproduce/<task>/. `make reproduce-reverse-addition` runs one task (dashes for underscores).
reproduce: $(STAMP)
	$(BIN)/python scripts/reproduce.py

# Figures 9 and 10 at CPU scale (docs/experiments.md, "Does the gain compound?"): copy under the standard and the
# accelerated schedule (and rounds of 1000 steps), then the accelerated reverse-addition recipe under seeds
# 42, 43, 44, with summaries and figures in outputs/experiments/acceleration/ (about 1 hour a seed).
reproduce-accelerated: $(STAMP)
	$(BIN)/python scripts/experiments.py acceleration

# Appendix B.6.3 (self-labelled data size, figure 27) and B.2.4 (vote variants, table 2, figure 17) at CPU scale,
# from the three round-0 members of the accelerated reverse-addition recipe (docs/experiments.md; about 10 and
# 40 minutes): the same runs as `make experiment-data-size` and `make experiment-vote-variants`.
reproduce-data-size: $(STAMP)
	$(BIN)/python scripts/experiments.py data_size

reproduce-vote-variants: $(STAMP)
	$(BIN)/python scripts/experiments.py vote_variants

reproduce-%: $(STAMP)
	$(BIN)/python scripts/reproduce.py $(subst -,_,$*)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_tasks.py
	$(BIN)/python benchmarks/bench_labeling.py
	$(BIN)/python benchmarks/bench_labeling.py --task copy --preset cpu --digits 12 -n 2000 --batch-sizes 500 --repeats 2
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_round_profile.py

clean:
	rm -rf $(VENV) .pytest_cache outputs

# The avalanche laboratory's CPU experiments (docs/experiments.md; never in CI): verifier_floor first, the others
# start from its round 0. `make experiment-verifier-floor` runs one (dashes for underscores).
experiments: $(STAMP)
	$(BIN)/python scripts/experiments.py verifier_floor
	$(BIN)/python scripts/experiments.py random_labels
	$(BIN)/python scripts/experiments.py noise_threshold
	$(BIN)/python scripts/experiments.py round_init
	$(BIN)/python scripts/experiments.py data_size
	$(BIN)/python scripts/experiments.py vote_variants

experiment-%: $(STAMP)
	$(BIN)/python scripts/experiments.py $(subst -,_,$*)
