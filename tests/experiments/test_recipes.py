"""The chapter recipes on the training loop: deterministic, they learn."""

import math

import pytest
import torch

from refimpl.experiments import (
    SnippetClassifier,
    compare_variants,
    fit_classifier,
    stdlib_bytes,
    stdlib_snippets,
)


def test_training_helpers_are_deterministic_and_learn():
    data = stdlib_bytes(30_000)
    configs = {"MQA": ("mqa", {"n_heads": 2})}
    kw = {"d_model": 16, "n_layers": 1, "steps": 40, "batch_size": 4, "seq_len": 16,
          "eval_every": 20, "lr": 1e-2}
    a = compare_variants(configs, data[:25_000], data[25_000:], **kw)["MQA"]
    b = compare_variants(configs, data[:25_000], data[25_000:], **kw)["MQA"]
    assert a["result"] == b["result"]
    assert a["result"].final_eval_loss < 0.8 * math.log(256)  # well below a uniform guess
    assert a["cache_per_token"] == 2 * 8
    assert a["result"].steps == [20, 40]


def test_fit_classifier_learns_the_snippets():
    X, y = stdlib_snippets(("json", "email"), length=32, per_class=60, seed=1)
    torch.manual_seed(0)
    model = SnippetClassifier(2, d_embed=8, d_hidden=16, pooling="lowrank", rank=2)
    losses, acc = fit_classifier(model, X, y, steps=80, seed=0)
    assert len(losses) == 80 and 0 <= acc <= 1
    assert sum(losses[-10:]) < sum(losses[:10])
    with pytest.raises(ValueError, match="train_frac"):
        fit_classifier(model, X, y, train_frac=1.0)
