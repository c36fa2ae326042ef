"""Run self-improvement rounds from a YAML recipe.

    accelerate launch [--config_file accelerate_configs/cpu.yaml] recipes/run_round.py \
        --config recipes/copy/config_cpu.yaml [--round N | --rounds A:B] [--key value ...]

With neither --round nor --rounds the run continues from the last completed round in the store.
"""

from si_hf.rounds import main

if __name__ == "__main__":
    main()
