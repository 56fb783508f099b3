"""refimpl.experiments.pretrained: the packaged MiniLM encoder and the mean-pooled head."""

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("all_minilm_l6_v2")

from refimpl import experiments as ex


@pytest.fixture(scope="module")
def minilm():
    return ex.load_minilm()


def test_load_minilm_gives_the_six_layer_384_wide_encoder(minilm):
    tokenizer, bert = minilm
    assert len(bert.encoder.layer) == 6 and bert.config.hidden_size == 384
    assert not bert.training
    assert tokenizer("a docstring")["input_ids"][0] == tokenizer.cls_token_id


def test_classifier_pools_only_unmasked_tokens_and_leaves_the_encoder_alone(minilm):
    tokenizer, bert = minilm
    model = ex.MeanPooledClassifier(bert, 2, 3, seed=1).eval()
    assert len(model.bert.encoder.layer) == 2 and len(bert.encoder.layer) == 6
    short = tokenizer(["return the sum"], return_tensors="pt")
    padded = tokenizer(["return the sum"], padding="max_length", max_length=12,
                       return_tensors="pt")
    with torch.no_grad():
        a = model((short["input_ids"], short["attention_mask"]))
        b = model((padded["input_ids"], padded["attention_mask"]))
    assert a.shape == (1, 3)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    same = ex.MeanPooledClassifier(bert, 2, 3, seed=1)
    torch.testing.assert_close(same.head.weight, model.head.weight)  # the seed fixes the head


@pytest.mark.parametrize("kwargs", [dict(n_layers=0, n_classes=2), dict(n_layers=7, n_classes=2),
                                    dict(n_layers=1, n_classes=0)])
def test_classifier_rejects_bad_sizes(minilm, kwargs):
    with pytest.raises(ValueError):
        ex.MeanPooledClassifier(minilm[1], **kwargs)
