"""Seed streams and the train/eval partition of the prompt space.

Every random draw in a run comes from `rng_for(seed, purpose, *keys)`, so D_0, each round's prompts
and the evaluation sets are independent streams that never depend on call order. Disjointness of
train and eval does not rely on the streams, though: `split_of` partitions the prompt space itself,
and samplers reject prompts of the other split, so an evaluation prompt can never be trained on
(the authors' code drew both from one stream and leaked evaluation problems into training).
"""

import hashlib
import json
import random
import zlib
from numbers import Integral

NUM_BUCKETS = 8
EVAL_BUCKET = 0
SPLITS = ("train", "eval")


def _check_key(value, what):
    if isinstance(value, bool) or not isinstance(value, (Integral, str)):
        raise ValueError(f"{what} must be an int or a str, got {value!r} ({type(value).__name__})")
    return int(value) if isinstance(value, Integral) else value


def rng_for(seed: int, purpose: str, *keys) -> random.Random:
    """An independent `random.Random` for (seed, purpose, *keys).

    The state is seeded from sha256 of a canonical JSON string, so streams for different purposes or
    keys share no structure (unlike seed + offset schemes, where streams of neighbouring runs
    coincide), and int 1 and str "1" are different keys.
    """
    seed = _check_key(seed, "seed")
    if not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if not isinstance(purpose, str) or not purpose:
        raise ValueError(f"purpose must be a non-empty str such as 'd0', 'eval' or 'round', got {purpose!r}")
    keys = [_check_key(k, "rng key") for k in keys]
    canonical = json.dumps(["si-hf", seed, purpose, *keys], separators=(",", ":"))
    return random.Random(int.from_bytes(hashlib.sha256(canonical.encode()).digest(), "big"))


def split_of(prompt: str) -> str:
    """'eval' for the 1 in NUM_BUCKETS crc32 bucket of the prompt reserved for evaluation, else 'train'."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a str, got {type(prompt).__name__}")
    return "eval" if zlib.crc32(prompt.encode()) % NUM_BUCKETS == EVAL_BUCKET else "train"


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return split
