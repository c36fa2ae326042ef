"""The Task interface shared by every task family (docs/architecture.md, "Tasks").

A subclass describes a difficulty as a *shape* (operand lengths, maze size) and implements `_draw(shape,
rng) -> (prompt, answer)`; this base class adds difficulty parsing, the D_0 distribution, rejection
into the train/eval split and fast bulk generation.
"""

import zlib
from numbers import Integral

from si_hf.registry import Registry

from .seeding import EVAL_BUCKET, NUM_BUCKETS, check_split, rng_for, split_of

# Every task family registers its class here, with the configuration keys that reach its constructor
# (`options`: YAML key -> argument). `si_hf.tasks.get_task` and `task_from_args` build tasks from it.
TASKS = Registry("task", key="task")

# Every character the "char" / "maze" tokenizers can spell (si_hf.tokenization; a test keeps them in
# step): a model may emit any of them, and verify must then answer False rather than raise.
CHAR_ALPHABET = frozenset("0123456789+*=()>#:,-abcdefghijklmnopqrstuvwxyz")
MAZE_ALPHABET = frozenset("0123456789>#:,-=")
# CPython refuses str() of ints above 4300 digits (sys.int_max_str_digits); stay below it.
MAX_DIGITS = 4000
# With a fraction p of a level's prompts in the split, a miss has probability (1 - p)**MAX_ATTEMPTS.
MAX_ATTEMPTS = 1000


def difficulty_sort_key(key: str) -> tuple:
    """Numeric order of difficulty keys: "9" < "10", "5x6" as (5, 6); other keys sort last."""
    return tuple(int(x) if x.isdigit() else float("inf") for x in str(key).split("x"))


class EmptySplitError(ValueError):
    """No prompt of a difficulty falls into the requested split (e.g. 1-digit copy has 10 prompts)."""


def is_int(value) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


class Task:
    name: str = ""
    tokenizer_name: str = "char"
    alphabet: frozenset = CHAR_ALPHABET
    min_difficulty: int = 1
    max_difficulty: int = MAX_DIGITS
    # 1: a difficulty is one level (an int); 2: an (n, m) pair (multiplication). Schedules and
    # evaluation grids follow it.
    difficulty_dims: int = 1
    # The answer is a number (its digits, as written): synthetic label noise (`si_hf.noise`) applies.
    arithmetic: bool = False

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"

    # --- difficulties (int by default; multiplication overrides) ---
    def parse_difficulty(self, value):
        if isinstance(value, str) and value.strip().isdigit():
            d = int(value)
        elif is_int(value):
            d = int(value)
        else:
            d = None
        if d is None or not self.min_difficulty <= d <= self.max_difficulty:
            raise ValueError(
                f"{self.name}: difficulty {value!r} is invalid; expected an int in "
                f"{self.min_difficulty}..{self.max_difficulty}"
            )
        return d

    def difficulty_key(self, d) -> str:
        return str(self.parse_difficulty(d))

    def d0_difficulties(self, d0) -> list:
        return list(range(self.min_difficulty, self.parse_difficulty(d0) + 1))

    def _shape(self, d):
        """The shape of a self-improvement / evaluation problem of difficulty d (equal operand lengths)."""
        return d

    def _d0_shape(self, levels, rng):
        """(shape, difficulty) under the D_0 distribution over `levels`."""
        d = rng.choice(levels)
        return self._shape(d), d

    def _draw(self, shape, rng) -> tuple[str, str]:
        raise NotImplementedError

    # --- sampling ---
    def _draw_in(self, shape, rng, split, d):
        draw, crc, want_eval = self._draw, zlib.crc32, split == "eval"
        for _ in range(MAX_ATTEMPTS):
            prompt, answer = draw(shape, rng)
            if (crc(prompt.encode()) % NUM_BUCKETS == EVAL_BUCKET) == want_eval:
                return prompt, answer
        raise EmptySplitError(
            f"{self.name}: no prompt of difficulty {self.difficulty_key(d)} fell into split {split!r} in "
            f"{MAX_ATTEMPTS} draws; this level's prompt space is too small to have a {split} split"
        )

    def sample(self, d, rng, split="train") -> tuple[str, str]:
        d = self.parse_difficulty(d)
        return self._draw_in(self._shape(d), rng, check_split(split), d)

    def sample_d0(self, d0, rng, split="train") -> tuple:
        check_split(split)
        shape, d = self._d0_shape(self.d0_difficulties(d0), rng)
        return (*self._draw_in(shape, rng, split, d), d)

    def generate(self, n, *, seed, purpose, keys=(), difficulty=None, d0=None, split="train") -> dict:
        """n examples as columns `prompt`, `answer`, `difficulty` (difficulty_key strings).

        The stream is rng_for(seed, purpose, task name, *keys, difficulty or d0), so each task and level
        gets its own stream without the caller having to add them to `keys`.
        """
        if not is_int(n) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        if (difficulty is None) == (d0 is None):
            raise ValueError(
                f"pass exactly one of difficulty and d0, got difficulty={difficulty!r}, d0={d0!r}"
            )
        check_split(split)
        draw_in, prompts, answers = self._draw_in, [], []
        if difficulty is not None:
            d = self.parse_difficulty(difficulty)
            key, shape = self.difficulty_key(d), self._shape(d)
            rng = rng_for(seed, purpose, self.name, *keys, "difficulty", key)
            for _ in range(n):
                prompt, answer = draw_in(shape, rng, split, d)
                prompts.append(prompt)
                answers.append(answer)
            return {"prompt": prompts, "answer": answers, "difficulty": [key] * n}
        levels = self.d0_difficulties(d0)
        keys_of = {d: self.difficulty_key(d) for d in levels}
        rng = rng_for(seed, purpose, self.name, *keys, "d0", keys_of[levels[-1]])
        d0_shape, difficulties = self._d0_shape, []
        for _ in range(n):
            shape, d = d0_shape(levels, rng)
            prompt, answer = draw_in(shape, rng, split, d)
            prompts.append(prompt)
            answers.append(answer)
            difficulties.append(keys_of[d])
        return {"prompt": prompts, "answer": answers, "difficulty": difficulties}

    # --- checking (from the prompt alone) ---
    def check_alphabet(self, text: str, what="answer"):
        if not isinstance(text, str):
            raise ValueError(f"{self.name}: {what} must be a str, got {type(text).__name__}")
        for i, ch in enumerate(text):
            if ch not in self.alphabet:
                raise ValueError(
                    f"{self.name}: {what} has character {ch!r} at position {i}, outside the task alphabet "
                    f"{''.join(sorted(self.alphabet))!r}"
                )

    def solve(self, prompt: str) -> str:
        """The oracle answer, computed from the prompt."""
        raise NotImplementedError

    def verify(self, prompt: str, answer: str) -> bool:
        self.check_alphabet(answer)
        return answer == self.solve(prompt)

    def max_answer_tokens(self, prompt: str) -> int:
        raise NotImplementedError

    def difficulty_of(self, prompt: str):
        raise NotImplementedError

    def split_of(self, prompt: str) -> str:
        return split_of(prompt)
