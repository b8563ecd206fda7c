"""A short fingerprint of one split of a corpus: equal fingerprints, the same clips at the same size.

What a tracker shows as the dataset's digest, so runs trained on the same data can be told from runs
trained on other data (another corpus_seed, size cap, clip size or corpus version) at a glance.
"""

from __future__ import annotations

import hashlib
import json

from text2sign.config import DataConfig


def split_digest(config: DataConfig, texts: list[str]) -> str:
    """10 hex characters of SHA-256 over the corpus spec, the clip size and the split's texts in order.

    The texts stand for the clips: a split is drawn by `corpus_seed` from the corpus, so a different
    draw or a changed corpus changes them; the clip size is what the model is shown of each.
    """
    spec = [config.name, config.image_size, config.num_frames]
    if config.signer_variation != 1.0:  # other clips under the same texts (the default keeps earlier digests)
        spec.append(config.signer_variation)
    if config.finger_keypoints:  # the same clips with more keypoints: other data for a pose plan
        spec.append("finger_keypoints")
    content = json.dumps([*spec, texts], ensure_ascii=False)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:10]
