"""The training loop: deterministic for a seed, reduces the loss on a tiny corpus; schedule,
clipping; the evaluations."""

import math

import pytest
import torch

from refimpl.experiments import (
    CharMLP,
    TinyLM,
    Trainer,
    cross_entropy,
    evaluate_lm,
    fit,
    lm_batch,
    perplexity,
    stdlib_bytes,
    stdlib_chars,
)


def test_fit_reduces_the_loss_on_a_tiny_corpus_and_is_deterministic():
    text = stdlib_chars("json", 20_000)

    def run():
        model = CharMLP(context=8, d_embed=8, d_hidden=32, seed=0)
        result = fit(model, lambda g: lm_batch(text, 32, 8, g, targets="last"), steps=60,
                     lr=1e-2, seed=0, evaluate=lambda m: perplexity(
                         m, *lm_batch(text, 256, 8, 123, targets="last")), eval_every=30)
        return model, result

    model, a = run()
    _, b = run()
    assert a == b
    assert len(a.losses) == 60 and a.steps == [30, 60] and a.final_eval_loss == a.eval_loss[-1]
    assert sum(a.losses[-10:]) < 0.8 * sum(a.losses[:10])
    assert a.final_eval_loss < 0.5 * 128  # perplexity well below a uniform guess
    assert not model.training


def test_trainer_step_is_adam_without_weight_decay():
    torch.manual_seed(0)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    a, b = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    trainer = Trainer(a, lr=0.1)
    opt = torch.optim.Adam(b.parameters(), lr=0.1)
    for _ in range(3):
        loss = trainer.step(x, y)
        ref = torch.nn.functional.cross_entropy(b(x), y)
        opt.zero_grad()
        ref.backward()
        opt.step()
        assert loss == ref.item()
    torch.testing.assert_close(a.weight, b.weight, rtol=0, atol=0)


def test_warmup_cosine_schedule_and_clipping():
    model = torch.nn.Linear(4, 2)
    trainer = Trainer(model, lr=1.0, steps=10, warmup=4, schedule="cosine", clip_norm=1e-3)
    rates = []
    for _ in range(10):
        rates.append(trainer.optimizer.param_groups[0]["lr"])
        trainer.step(torch.randn(3, 4), torch.tensor([0, 1, 0]))
        total = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
        assert total <= 1e-3 * (1 + 1e-6)
    expected = [min(1, (s + 1) / 4) * 0.5 * (1 + math.cos(math.pi * s / 10)) for s in range(10)]
    assert rates == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs the number of steps"):
        Trainer(model, schedule="cosine")
    with pytest.raises(ValueError, match="schedule must be one of"):
        Trainer(model, schedule="linear", steps=3)
    with pytest.raises(ValueError, match="no trainable parameters"):
        Trainer(model.requires_grad_(False))


def test_cross_entropy_flattens_sequence_logits():
    logits = torch.randn(2, 3, 5)
    targets = torch.randint(0, 5, (2, 3))
    ref = torch.nn.functional.cross_entropy(logits.reshape(6, 5), targets.reshape(6))
    torch.testing.assert_close(cross_entropy(logits, targets), ref)
    torch.testing.assert_close(cross_entropy(logits, targets, reduction="sum"), 6 * ref)


def test_evaluate_lm_is_the_mean_next_byte_loss():
    data = stdlib_bytes(5_000)
    model = TinyLM(16, 1, "mha", {"n_heads": 2}, seed=0)
    windows = data[: 4 * 32 + 1]
    idx = torch.arange(4)[:, None] * 32 + torch.arange(33)
    with torch.no_grad():
        ref = float(cross_entropy(model(windows[idx][:, :-1]), windows[idx][:, 1:]))
    assert evaluate_lm(model, data, 32, max_windows=4, batch_size=3) == pytest.approx(ref)
    with pytest.raises(ValueError, match="shorter than one window"):
        evaluate_lm(model, data[:10], 32)
