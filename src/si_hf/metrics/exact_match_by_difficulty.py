"""Exact-match accuracy, overall and per difficulty: a local `evaluate` metric module.

Loaded by path (`evaluate.load(<this file>)`), never from the Hub. Strings are compared as they are:
no stripping or case folding, because a self-improvement label is only useful when it is exactly right.
One import per line: evaluate's dependency scanner reads `import a, b` as a package named "a,".
"""

import datasets
import evaluate

_DESCRIPTION = "Fraction of predictions equal to their reference, overall and for each difficulty key."

_KWARGS_DESCRIPTION = """
Args:
    predictions (list of str): model outputs (answers only, special tokens stripped).
    references (list of str): ground-truth answers.
    difficulties (list of str): difficulty key of each example, e.g. "17" or "5x6".
    finished (list of bool): whether each output is complete (ended with EOS within its
        length bound). An incomplete output is never correct, whatever its text (paper section 3:
        all tokens of the output sequence must match, the EOS included).
Returns:
    exact_match (float): accuracy over all examples (0.0 when there are none).
    exact_match_by_difficulty (dict[str, float]): accuracy per difficulty key.
    count_by_difficulty (dict[str, int]): number of examples per difficulty key.
"""


class ExactMatchByDifficulty(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Value("string"),
                    "difficulties": datasets.Value("string"),
                    "finished": datasets.Value("bool"),
                }
            ),
        )

    def _compute(self, predictions, references, difficulties, finished):
        hits, counts = {}, {}
        for prediction, reference, difficulty, done in zip(predictions, references, difficulties, finished):
            counts[difficulty] = counts.get(difficulty, 0) + 1
            hits[difficulty] = hits.get(difficulty, 0) + int(bool(done) and prediction == reference)
        total = sum(counts.values())
        return {
            "exact_match": sum(hits.values()) / total if total else 0.0,
            "exact_match_by_difficulty": {d: hits[d] / counts[d] for d in counts},
            "count_by_difficulty": counts,
        }
