"""Compare two si-hf output directories (the same as `si-hf compare A B`; see si_hf/compare.py)."""

import sys

from si_hf.compare import main

if __name__ == "__main__":
    sys.exit(main())
