"""Chain-of-thought multiplication (paper section 6.2, appendix C.2.2).

A difficulty (n, m) is an n-digit first operand times an m-digit second operand; key "nxm". Both
operands are written least-significant digit first. The answer lists, for each digit b_i of the
second operand (least significant first), the partial product b_i*a*10^i reversed and right-padded
to i+n+1 digits, with the running sum (same padding) in parentheses after every partial product
except the first and the last, then '=' and the product reversed and padded to n+m digits.
"""

import re

from .base import MAX_DIGITS, TASKS, Task, is_int


def cot_multiplication(a: int, b: int) -> tuple[str, str]:
    """(prompt, answer) for a*b, e.g. 1234*567 -> ('4321*765=', '83680+040470(876280)+0007160=8769960')."""
    if not (is_int(a) and is_int(b) and a > 0 and b > 0):
        raise ValueError(f"operands must be positive ints, got {a!r} and {b!r}")
    sa, sb = str(a), str(b)
    n, m = len(sa), len(sb)
    steps, total = [], 0
    for i, digit in enumerate(reversed(sb)):
        partial = int(digit) * a * 10**i
        total += partial
        step = str(partial)[::-1].ljust(i + n + 1, "0")
        if 0 < i < m - 1:
            step += "(" + str(total)[::-1].ljust(i + n + 1, "0") + ")"
        steps.append(step)
    return f"{sa[::-1]}*{sb[::-1]}=", "+".join(steps) + "=" + str(total)[::-1].ljust(n + m, "0")


def cot_length(n: int, m: int) -> int:
    """Exact answer length of an n-digit by m-digit product: the format is fixed-width."""
    partials = sum(i + n + 1 for i in range(m))
    sums = sum(i + n + 3 for i in range(1, m - 1))
    return partials + sums + (m - 1) + 1 + n + m


_DIFFICULTY = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*")


@TASKS.register(help="chain-of-thought n x m multiplication; difficulty = (n, m) (section 6.2)")
class Multiplication(Task):
    name = "multiplication"
    difficulty_dims = 2
    arithmetic = True

    def parse_difficulty(self, value):
        pair = None
        if isinstance(value, str) and (match := _DIFFICULTY.fullmatch(value)):
            pair = int(match[1]), int(match[2])
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
            pair = int(value[0]), int(value[1])
        if pair is None or not all(1 <= x <= MAX_DIGITS for x in pair):
            raise ValueError(
                f"{self.name}: difficulty {value!r} is invalid; expected an (n, m) pair of ints in "
                f"1..{MAX_DIGITS}, as (5, 6), [5, 6] or '5x6'"
            )
        return pair

    def difficulty_key(self, d) -> str:
        n, m = self.parse_difficulty(d)
        return f"{n}x{m}"

    def d0_difficulties(self, d0) -> list:
        """Every (i, j) with i <= n and j <= m; an int n means up to n-by-n."""
        if is_int(d0) and d0 >= 1:
            n = m = int(d0)
        else:
            try:
                n, m = self.parse_difficulty(d0)
            except ValueError:
                raise ValueError(
                    f"{self.name}: d0 {d0!r} is invalid; expected an int n (up to n-by-n) or an (n, m) pair"
                ) from None
        if max(n, m) > MAX_DIGITS:
            raise ValueError(
                f"{self.name}: d0 {d0!r} is out of range; expected operand lengths <= {MAX_DIGITS}"
            )
        return [(i, j) for i in range(1, n + 1) for j in range(1, m + 1)]

    def _draw(self, shape, rng):
        n, m = shape
        return cot_multiplication(rng.randrange(10 ** (n - 1), 10**n), rng.randrange(10 ** (m - 1), 10**m))

    def operands(self, prompt: str) -> tuple[int, int]:
        """The operands' values (the prompt writes them reversed, without leading zeros)."""
        self.check_alphabet(prompt, "prompt")
        parts = prompt[:-1].split("*") if prompt.endswith("=") else []
        if len(parts) != 2 or not all(p.isdigit() and p[-1] != "0" for p in parts):
            raise ValueError(
                f"{self.name}: malformed prompt {prompt!r}; expected '<digits>*<digits>=' with reversed "
                "operands whose last written digit (the most significant) is not 0"
            )
        return int(parts[0][::-1]), int(parts[1][::-1])

    def difficulty_of(self, prompt: str) -> tuple[int, int]:
        a, b = self.operands(prompt)
        return len(str(a)), len(str(b))

    def solve(self, prompt):
        return cot_multiplication(*self.operands(prompt))[1]

    def max_answer_tokens(self, prompt):
        return cot_length(*self.difficulty_of(prompt))
