"""Copy and reverse a digit string (`4821937=` -> `4821937` / `7391284`).

Strings are uniform over all digit strings of the length, leading zeros included.
"""

from .base import TASKS, Task


class _StringTask(Task):
    def _digits(self, length, rng):
        return str(rng.randrange(10**length)).zfill(length)

    def string_of(self, prompt: str) -> str:
        self.check_alphabet(prompt, "prompt")
        s = prompt[:-1]
        if not prompt.endswith("=") or not s.isdigit():
            raise ValueError(f"{self.name}: malformed prompt {prompt!r}; expected '<digits>='")
        return s

    def difficulty_of(self, prompt: str) -> int:
        return len(self.string_of(prompt))

    def max_answer_tokens(self, prompt: str) -> int:
        return self.difficulty_of(prompt)


@TASKS.register(help="copy a digit string (section 4)")
class Copy(_StringTask):
    name = "copy"

    def _draw(self, length, rng):
        s = self._digits(length, rng)
        return s + "=", s

    def solve(self, prompt):
        return self.string_of(prompt)


@TASKS.register(help="reverse a digit string (section 4)")
class ReverseString(_StringTask):
    name = "reverse_string"

    def _draw(self, length, rng):
        s = self._digits(length, rng)
        return s + "=", s[::-1]

    def solve(self, prompt):
        return self.string_of(prompt)[::-1]
