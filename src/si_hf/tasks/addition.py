"""Reverse and forward addition (paper section 5, appendix C.2.1).

Operands are random ints with a non-zero first digit, never zero-padded. Difficulty is the number of
digits of the longer operand. D_0 draws the two lengths independently and uniformly in 1..d0, as the
authors' scripts do (so level d has weight 2d - 1); `d0_operand_lengths="equal"` draws one length for
both, as section 3 words the task ("two numbers of equal length"), and every level equally often;
`"equal_weighted"` gives both operands the longer of two independent lengths: equal operands under the
independent draws' mix of levels. Self-improvement and evaluation prompts have equal lengths always.
"""

from .base import TASKS, Task

D0_OPERAND_LENGTHS = ("independent", "equal", "equal_weighted")


class _Addition(Task):
    arithmetic = True

    def __init__(self, d0_operand_lengths: str = "independent"):
        if d0_operand_lengths not in D0_OPERAND_LENGTHS:
            raise ValueError(
                f"d0_operand_lengths: {d0_operand_lengths!r} is not one of {list(D0_OPERAND_LENGTHS)}"
            )
        self.d0_operand_lengths = d0_operand_lengths

    def __repr__(self):
        return f"{type(self).__name__}(d0_operand_lengths={self.d0_operand_lengths!r})"

    def _shape(self, d):
        return d, d

    def _d0_shape(self, levels, rng):
        la, mode = rng.choice(levels), self.d0_operand_lengths
        if mode == "equal":
            return (la, la), la
        lb = rng.choice(levels)
        if mode == "equal_weighted":
            la = lb = max(la, lb)
        return (la, lb), max(la, lb)

    def operands(self, prompt: str) -> tuple[str, str]:
        """The two operands as written in the prompt."""
        self.check_alphabet(prompt, "prompt")
        parts = prompt[:-1].split("+") if prompt.endswith("=") else []
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"{self.name}: malformed prompt {prompt!r}; expected '<digits>+<digits>='")
        return parts[0], parts[1]

    def difficulty_of(self, prompt: str) -> int:
        return max(map(len, self.operands(prompt)))

    def max_answer_tokens(self, prompt: str) -> int:
        return self.difficulty_of(prompt) + 1


@TASKS.register(
    help="a+b with operands and answer least-significant digit first (section 5)",
    options=("d0_operand_lengths",),
)
class ReverseAddition(_Addition):
    """Operands and answer least-significant digit first; answer right-padded with '0' to max(len)+1."""

    name = "reverse_addition"

    def _draw(self, shape, rng):
        la, lb = shape
        x, y = rng.randrange(10 ** (la - 1), 10**la), rng.randrange(10 ** (lb - 1), 10**lb)
        return f"{str(x)[::-1]}+{str(y)[::-1]}=", str(x + y)[::-1].ljust(max(la, lb) + 1, "0")

    def solve(self, prompt):
        a, b = self.operands(prompt)
        return str(int(a[::-1]) + int(b[::-1]))[::-1].ljust(max(len(a), len(b)) + 1, "0")


@TASKS.register(
    help="a+b written as usual, most significant digit first (section 6.1)", options=("d0_operand_lengths",)
)
class ForwardAddition(_Addition):
    """Plain addition: most-significant digit first, no padding."""

    name = "forward_addition"

    def _draw(self, shape, rng):
        la, lb = shape
        x, y = rng.randrange(10 ** (la - 1), 10**la), rng.randrange(10 ** (lb - 1), 10**lb)
        return f"{x}+{y}=", str(x + y)

    def solve(self, prompt):
        a, b = self.operands(prompt)
        return str(int(a) + int(b))
