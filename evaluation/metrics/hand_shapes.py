"""Can the judge tell signs apart by their hand shape? The legibility of the hands, from the judge's readings.

Back-translation WER counts every error alike; most of them are about where the hands go. Some signs of the
synthetic lexicon go nearly the same way and differ mainly in the shape of the hand (WATER and WHO: the same
small circle at the mouth, two fingers against one): a video whose hands are blobs can be read right only
by chance between them. For every such gloss in the references, the judge's reading at its place (by the
same alignment WER uses) is a hit when it is the gloss and a confusion when it is a partner; the score is
hits / (hits + confusions). Set beside the same score on the real clips, it says how much of the hand shape
the generated videos carry.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from evaluation.metrics.text_metrics import alignment
from text2sign.data.lexicon import LEXICON, REST, HandTrack, Sign

# Two signs are partners when their hands' paths are this close (mean distance over the sign, both hands, in
# shoulder half-widths: a hand is about 0.4 wide) and their fingers point within this angle of each other, but
# their hand shapes differ: then the shape is what tells them apart.
PATH_TOLERANCE = 0.25
ANGLE_TOLERANCE_DEG = 45.0
_INSTANTS = np.linspace(0.0, 1.0, 32)


def _shapes(sign: Sign) -> tuple[str | None, ...]:
    base = sign.non_dominant or REST
    return sign.dominant.shape, sign.dominant.shape_end, base.shape, base.shape_end


def _differ_only_by_shape(a: Sign, b: Sign, tracks: Mapping[str, tuple[HandTrack, HandTrack]]) -> bool:
    (dominant_a, base_a), (dominant_b, base_b) = tracks[a.gloss], tracks[b.gloss]
    path = (np.linalg.norm(dominant_a.centre - dominant_b.centre, axis=1).mean()
            + np.linalg.norm(base_a.centre - base_b.centre, axis=1).mean())
    turn = np.degrees(np.abs(np.angle(np.exp(1j * (dominant_a.angle - dominant_b.angle)))).mean())
    return path <= PATH_TOLERANCE and turn <= ANGLE_TOLERANCE_DEG and _shapes(a) != _shapes(b)


def hand_shape_partners(lexicon: Mapping[str, Sign] = LEXICON) -> dict[str, frozenset[str]]:
    """Every gloss that has partners, and its partners: the signs it differs from mainly by hand shape."""
    tracks = {gloss: sign.tracks(_INSTANTS) for gloss, sign in lexicon.items()}
    partners: dict[str, set[str]] = {}
    for a, b in itertools.combinations(lexicon.values(), 2):
        if _differ_only_by_shape(a, b, tracks):
            partners.setdefault(a.gloss, set()).add(b.gloss)
            partners.setdefault(b.gloss, set()).add(a.gloss)
    return {gloss: frozenset(others) for gloss, others in partners.items()}


def hand_shape_reading(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]],
                       partners: Mapping[str, frozenset[str]]) -> float | None:
    """Hits over hits and confusions between hand-shape partners; None when no such gloss was read either way."""
    hits = confusions = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        for wanted, read in alignment(reference, hypothesis):
            if wanted not in partners:
                continue
            hits += read == wanted
            confusions += read in partners[wanted]
    return hits / (hits + confusions) if hits + confusions else None
