"""Word error rate and BLEU-4 of recognized gloss sequences against the glosses that were asked for.

Both are corpus-level, as sign-language-production papers report them for back-translation: edits and
n-gram counts are summed over the whole test set before dividing, so a one-gloss clip weighs less than
a four-gloss clip. Inputs are already tokens (glosses), so there is no tokenizer here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

BLEU_MAX_ORDER = 4


def _check_pairs(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(
            f"got {len(references)} references but {len(hypotheses)} hypotheses; pass one hypothesis per reference"
        )


def _edit_costs(a: Sequence[str], b: Sequence[str]) -> list[list[int]]:
    """costs[i][j]: the fewest substitutions, insertions and deletions that turn a[:i] into b[:j] (Levenshtein)."""
    costs = [list(range(len(b) + 1))]  # from a[:0] to every prefix of b
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            current.append(
                min(
                    costs[i - 1][j] + 1,  # delete token_a
                    current[j - 1] + 1,  # insert token_b
                    costs[i - 1][j - 1] + (token_a != token_b),  # substitute, free when they match
                )
            )
        costs.append(current)
    return costs


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions that turn `a` into `b`."""
    return _edit_costs(a, b)[-1][-1]


def alignment(reference: Sequence[str], hypothesis: Sequence[str]) -> list[tuple[str, str | None]]:
    """Each reference token and what the hypothesis has at its place (None: deleted), by the alignment behind
    `edit_distance`, preferring matches and substitutions, then deletions."""
    costs = _edit_costs(reference, hypothesis)
    pairs: list[tuple[str, str | None]] = []
    i, j = len(reference), len(hypothesis)
    while i > 0:
        if j > 0 and costs[i][j] == costs[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            pairs.append((reference[i - 1], hypothesis[j - 1]))
            i, j = i - 1, j - 1
        elif costs[i][j] == costs[i - 1][j] + 1:
            pairs.append((reference[i - 1], None))
            i -= 1
        else:  # an inserted hypothesis token: no reference token is read there
            j -= 1
    return pairs[::-1]


def word_error_rate(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float:
    """Corpus WER as a fraction: total edits over total reference tokens (0.0 is perfect; it can exceed 1).

    An empty reference is allowed: its hypothesis tokens count as insertions. A corpus with no
    reference tokens at all has no WER, which raises ValueError rather than returning a made-up number.
    """
    _check_pairs(references, hypotheses)
    reference_tokens = sum(len(r) for r in references)
    if reference_tokens == 0:
        raise ValueError("word error rate is undefined when the references hold no tokens at all")
    edits = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return edits / reference_tokens


def _ngrams(tokens: Sequence[str], order: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + order]) for i in range(len(tokens) - order + 1))


def bleu4(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002) with one reference per hypothesis, on the 0-100 scale.

    Clipped n-gram matches and hypothesis n-gram totals are summed over the corpus for n = 1..4, their
    ratios averaged geometrically with equal weights, and the result multiplied by the brevity penalty
    exp(1 - r/c) when the corpus hypothesis length c is below the reference length r.

    No smoothing: if any order has zero matches (or the hypotheses hold no n-grams of that order),
    BLEU is 0. This is sacrebleu's `smooth_method="none"`; sacrebleu's default "exp" smoothing only
    differs in exactly that case, where it gives a small positive number instead.
    """
    _check_pairs(references, hypotheses)
    matches = [0] * BLEU_MAX_ORDER
    totals = [0] * BLEU_MAX_ORDER
    for reference, hypothesis in zip(references, hypotheses):
        for order in range(1, BLEU_MAX_ORDER + 1):
            hypothesis_ngrams = _ngrams(hypothesis, order)
            reference_ngrams = _ngrams(reference, order)
            # Clipping: a hypothesis n-gram counts at most as often as the reference has it.
            matches[order - 1] += sum(min(n, reference_ngrams[gram]) for gram, n in hypothesis_ngrams.items())
            totals[order - 1] += sum(hypothesis_ngrams.values())
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / BLEU_MAX_ORDER
    hypothesis_length = sum(len(h) for h in hypotheses)
    reference_length = sum(len(r) for r in references)
    brevity_penalty = (
        1.0 if hypothesis_length >= reference_length else math.exp(1.0 - reference_length / hypothesis_length)
    )
    return 100.0 * brevity_penalty * math.exp(log_precision)
