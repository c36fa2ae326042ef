"""A task, a filter and a schedule of a user's own, registered from outside si_hf (docs/extending.md).

    plugins: [examples/my_extension.py]      # in a recipe, or --plugins on the command line

- task `sort_digits`: write the digits of a string in ascending order ("3142=" -> "1234"); the
  difficulty is the string's length, and the answer is exactly as long as the prompt's string.
- filter `same_digits`: keep a label only when it uses exactly the prompt's digits, each as often. It
  reads the prompt alone, never the answer: a check without ground truth, as every filter must be.
- schedule `wide`: label the next `width` levels every round (`plugin_options: {wide: {width: 2}}`).
"""

from __future__ import annotations

from si_hf.checks import require_int
from si_hf.filtering import FILTERS, Filter
from si_hf.schedules import SCHEDULES, Schedule
from si_hf.tasks import TASKS, Task


@TASKS.register(help="sort the digits of a string ('3142=' -> '1234'); difficulty = its length")
class SortDigits(Task):
    name = "sort_digits"

    def _draw(self, length, rng):
        digits = "".join(rng.choice("0123456789") for _ in range(length))
        return digits + "=", "".join(sorted(digits))

    def digits(self, prompt: str) -> str:
        self.check_alphabet(prompt, "prompt")
        if not prompt.endswith("=") or not prompt[:-1].isdigit():
            raise ValueError(f"{self.name}: malformed prompt {prompt!r}; expected '<digits>='")
        return prompt[:-1]

    def solve(self, prompt: str) -> str:
        return "".join(sorted(self.digits(prompt)))

    def difficulty_of(self, prompt: str) -> int:
        return len(self.digits(prompt))

    def max_answer_tokens(self, prompt: str) -> int:
        return self.difficulty_of(prompt)


def same_digits(inputs, keep: list[bool]) -> list[bool]:
    """A stage of `apply_filters`: `keep` is what the stages before it kept; one decision per prompt."""
    return [
        kept and sorted(p.text) == sorted(prompt[:-1])
        for kept, p, prompt in zip(keep, inputs.predictions, inputs.prompts)
    ]


FILTERS.register(
    "same_digits",
    Filter(stage=same_digits),
    help="keep a label that uses exactly the prompt's digits (sort_digits; no answer needed)",
)


def _width(settings) -> int:
    return settings.options_of("wide").get("width", 2)


def _check_width(settings, task) -> None:
    require_int(_width(settings), "plugin_options.wide.width", 1)


def wide(state) -> list:
    frontier = max(state.task.parse_difficulty(k) for k in state.trained)
    return list(range(frontier + 1, frontier + 1 + _width(state.settings)))


SCHEDULES.register(
    "wide",
    Schedule(wide, min_step=_width),
    help="the next `width` levels every round (plugin_options: {wide: {width: 2}})",
    validate=_check_width,
)
