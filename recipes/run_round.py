"""Run self-improvement rounds from a YAML recipe (the same as `si-hf run`).

    accelerate launch [--config_file accelerate_configs/cpu.yaml] recipes/run_round.py \
        --config recipes/copy/config_cpu.yaml [--round N | --rounds A:B] [--key value ...]

With neither --round nor --rounds the run continues from the last completed round in the store.
"""

import sys

from si_hf.cli import run

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
