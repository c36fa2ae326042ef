"""What a round's self-labelled dataset holds: one schema for the round loop, the store and the Hub."""

from __future__ import annotations

from datasets import Features, List, Value

ROUND_FEATURES = Features(
    {
        "prompt": Value("string"),
        "completion": Value("string"),  # the label; the model trains on completion + EOS
        "difficulty": Value("string"),  # the task's difficulty key, from the prompt
        "round": Value("int64"),
        "generated_by": Value("string"),  # round-(r-1)/member-m, or round-(r-1)/members-0,1,.. when voting
        "filter": Value("string"),  # the filters of the round joined by "+"
        "votes": Value("int64"),  # members agreeing on the label (1 without majority vote)
        # the label ended with EOS; only filters: [none] keeps labels that did not (their text up to
        # the prompt's length bound)
        "finished": Value("bool"),
        # voting rounds: the members whose own decoded label is this one (the labelling member alone
        # otherwise)
        "agreeing_members": List(Value("int64")),
        # the training target (completion + EOS) is the true answer; measured, never used to filter
        "oracle_correct": Value("bool"),
        # synthetic noise (`noise_rounds`, appendix B.6.2): this label was replaced after the filters, and
        # the label the filters kept (equal to completion when not injected)
        "injected": Value("bool"),
        "original_completion": Value("string"),
    }
)
ROUND_COLUMNS = tuple(ROUND_FEATURES)
# The columns a round needs to be trained on: rounds written by older versions of si-hf lack others.
REQUIRED_COLUMNS = (
    "prompt",
    "completion",
    "difficulty",
    "round",
    "generated_by",
    "filter",
    "votes",
    "oracle_correct",
)


def empty_round():
    """A typed round dataset with no rows (a round whose filters kept nothing)."""
    from datasets import Dataset

    return Dataset.from_dict({name: [] for name in ROUND_FEATURES}, features=ROUND_FEATURES)
