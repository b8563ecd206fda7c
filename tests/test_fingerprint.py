"""The digest a run's dataset inputs show: the same for the same clips at the same size, else different."""

from __future__ import annotations

import dataclasses

from text2sign.config import DataConfig
from text2sign.data.fingerprint import split_digest


def test_the_split_digest_changes_with_the_texts_the_corpus_and_the_clip_size_only():
    data = DataConfig(name="synthetic", image_size=16, num_frames=4)
    texts = ["where is my house", "the sun is warm"]
    digest = split_digest(data, texts)
    assert len(digest) == 10 and digest == split_digest(dataclasses.replace(data, num_workers=4), list(texts))
    assert digest != split_digest(data, texts[::-1])
    assert digest != split_digest(dataclasses.replace(data, image_size=32), texts)
    assert digest != split_digest(dataclasses.replace(data, name="folder:/data/clips"), texts)
    assert digest != split_digest(dataclasses.replace(data, finger_keypoints=True), texts)  # more keypoints to learn
