"""The hand-shape reading: does the judge tell apart signs that differ mainly in the shape of the hand?"""

from __future__ import annotations

from evaluation.metrics.hand_shapes import alignment, hand_shape_partners, hand_shape_reading
from text2sign.data.lexicon import LEXICON, REST


def _hand_shapes(gloss: str) -> tuple:
    sign = LEXICON[gloss]
    base = sign.non_dominant or REST
    return sign.dominant.shape, sign.dominant.shape_end, base.shape, base.shape_end


def test_partners_are_signs_that_go_the_same_way_in_another_hand_shape():
    partners = hand_shape_partners()
    assert "WHO" in partners["WATER"] and "DOCTOR" in partners["WORK"]  # same path; v against point, v against fist
    for gloss, others in partners.items():
        for other in others:
            assert gloss in partners[other]  # symmetric
            assert _hand_shapes(gloss) != _hand_shapes(other)
    assert "HELLO" not in partners  # a sign nothing else resembles in its path


def test_alignment_puts_each_reference_gloss_beside_what_was_read_at_its_place():
    assert alignment(["I", "WATER", "DRINK"], ["I", "WHO", "DRINK", "NOW"]) == [("I", "I"), ("WATER", "WHO"), ("DRINK", "DRINK")]
    assert alignment(["I", "WATER"], ["WATER"]) == [("I", None), ("WATER", "WATER")]
    assert alignment(["WATER"], []) == [("WATER", None)]


def test_reading_counts_a_partner_as_a_confusion_and_other_errors_not_at_all():
    partners = hand_shape_partners()
    assert hand_shape_reading([["I", "WATER"]], [["I", "WATER"]], partners) == 1.0
    assert hand_shape_reading([["I", "WATER"]], [["I", "WHO"]], partners) == 0.0
    # Misread as a sign of another path, or not read: the hands' shape is not what failed.
    assert hand_shape_reading([["I", "WATER"]], [["I", "HELLO"]], partners) is None
    assert hand_shape_reading([["WATER", "WORK"]], [["WHO", "WORK"]], partners) == 0.5
    assert hand_shape_reading([["I", "HELLO"]], [["I", "HELLO"]], partners) is None  # no partnered gloss asked for


def test_evaluation_logs_each_set_s_reading_and_the_generated_one_as_a_fraction_of_the_real_clips():
    from evaluation.evaluate_model import _hand_shape_metrics

    glosses = [("WATER", "WORK")]
    read = {"generated": [["WHO", "WORK"]], "real": [["WATER", "WORK"]]}
    assert _hand_shape_metrics(glosses, read) == {
        "eval/hand_shape_reading": 0.5, "eval/hand_shape_reading_real": 1.0, "eval/hand_shape_reading_vs_real": 0.5}
    assert _hand_shape_metrics(glosses, {"true_pose": [["WATER", "DOCTOR"]]}) == {"eval/hand_shape_reading_true_pose": 0.5}
    assert _hand_shape_metrics([("HELLO",)], {"generated": [["HELLO"]], "real": [["HELLO"]]}) == {}
