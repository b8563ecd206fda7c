"""WER and BLEU-4 of gloss sequences, against cases worked out by hand."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics.text_metrics import bleu4, edit_distance, word_error_rate


def test_edit_distance_counts_substitutions_insertions_and_deletions():
    assert edit_distance(list("kitten"), list("sitting")) == 3  # k->s, e->i, +g
    assert edit_distance(("I", "GO", "HOME"), ("I", "HOME")) == 1
    assert edit_distance((), ("A", "B")) == 2
    assert edit_distance(("A", "B"), ("A", "B")) == 0


def test_word_error_rate_is_corpus_level_not_a_mean_of_sentences():
    references = [("A", "B", "C", "D"), ("E",)]
    hypotheses = [("A", "B", "C", "D"), ()]
    # 1 deletion over 5 reference glosses; the mean of sentence WERs would be 0.5.
    assert word_error_rate(references, hypotheses) == pytest.approx(0.2)


def test_word_error_rate_counts_words_said_over_an_empty_reference_as_insertions():
    assert word_error_rate([(), ("A", "B")], [("X",), ("A", "B")]) == pytest.approx(0.5)


def test_word_error_rate_refuses_a_corpus_without_reference_words_and_mismatched_lengths():
    with pytest.raises(ValueError, match="no tokens"):
        word_error_rate([()], [("A",)])
    with pytest.raises(ValueError, match="one hypothesis per reference"):
        word_error_rate([("A",)], [])


def test_bleu4_of_one_wrong_last_word_is_the_geometric_mean_of_the_four_precisions():
    # Precisions 4/5, 3/4, 2/3, 1/2; equal lengths, so no brevity penalty.
    expected = 100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25
    assert bleu4([("A", "B", "C", "D", "E")], [("A", "B", "C", "D", "X")]) == pytest.approx(expected)
    assert expected == pytest.approx(66.87, abs=0.01)


def test_bleu4_applies_the_brevity_penalty_to_a_short_corpus():
    # All precisions 1; c = 4 < r = 5.
    assert bleu4([("A", "B", "C", "D", "E")], [("A", "B", "C", "D")]) == pytest.approx(100 * math.exp(1 - 5 / 4))


def test_bleu4_clips_repeated_words_and_aggregates_counts_over_the_corpus():
    references = [("W", "X", "Y", "Z"), ("A", "B")]
    hypotheses = [("W", "X", "Y", "Z"), ("A", "A")]
    # Unigrams 5/6 (the second "A" is clipped), bigrams 3/4, trigrams 2/2, 4-grams 1/1; c = r = 6.
    assert bleu4(references, hypotheses) == pytest.approx(100 * (5 / 6 * 3 / 4) ** 0.25)


def test_bleu4_is_zero_when_an_order_has_no_match_and_100_when_perfect():
    assert bleu4([("A", "B", "C", "D")], [("A", "B", "D", "C")]) == 0.0  # no 4-gram matches
    assert bleu4([("A", "B")], [("A", "B")]) == 0.0  # no 4-grams at all
    assert bleu4([("A", "B", "C", "D")], [("A", "B", "C", "D")]) == pytest.approx(100.0)
