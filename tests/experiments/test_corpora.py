"""Corpora from the standard library: non-empty, deterministic; seeded batches."""

import pytest
import torch

from refimpl.experiments import corpora
from refimpl.seeding import torch_generator


def test_stdlib_bytes_are_bytes_and_deterministic():
    data = corpora.stdlib_bytes(30_000)
    assert data.dtype == torch.int64 and len(data) == 30_000 and int(data.max()) < 256
    assert int(data.min()) >= 0 and len(set(data.tolist())) > 50
    assert torch.equal(corpora.stdlib_bytes(30_000), data)
    assert torch.equal(corpora.stdlib_bytes(1000), data[:1000])


def test_stdlib_chars_are_ascii_codes_without_tests():
    text = corpora.stdlib_chars("json", 5000)
    assert text.dtype == torch.int64 and len(text) == 5000 and int(text.max()) < 128
    assert torch.equal(corpora.stdlib_chars("json", 5000), text)
    assert len(corpora.stdlib_chars("json")) > 5000
    files = corpora.package_files("unittest")
    assert files and all(p.suffix == ".py" for p in files)
    assert not any({"test", "tests"} & set(p.parent.relative_to(files[0].parent).parts)
                   for p in files)
    assert len(corpora.package_files("unittest", skip_tests=False)) > len(files)


def test_snippets_and_docstrings_are_labelled_and_deterministic():
    X, y = corpora.stdlib_snippets(("json", "email"), length=32, per_class=10, seed=1)
    assert X.shape == (20, 32) and X.dtype == torch.long and set(y.tolist()) == {0, 1}
    X2, _ = corpora.stdlib_snippets(("json", "email"), length=32, per_class=10, seed=1)
    assert torch.equal(X, X2)
    texts, labels = corpora.stdlib_docstrings(["json", "email"], max_chars=50, seed=0)
    assert len(texts) == len(labels) > 20 and set(labels.tolist()) == {0, 1}
    assert all(0 < len(t) <= 50 and "\n" not in t for t in texts)
    assert corpora.stdlib_docstrings(["json", "email"], max_chars=50, seed=0)[0] == texts


def test_batches_are_deterministic_for_a_seed():
    data = torch.arange(1000)
    a = corpora.random_windows(data, 8, 5, 3)
    b = corpora.random_windows(data, 8, 5, torch_generator(3))
    assert torch.equal(a, b) and a.shape == (8, 5)
    assert torch.equal(a[:, 1:] - a[:, :-1], torch.ones(8, 4, dtype=torch.long))  # consecutive
    assert not torch.equal(a, corpora.random_windows(data, 8, 5, 4))
    x, t = corpora.lm_batch(data, 4, 6, 0)
    assert x.shape == t.shape == (4, 6) and torch.equal(t, x + 1)
    x, t = corpora.lm_batch(data, 4, 6, 0, targets="last")
    assert t.shape == (4,) and torch.equal(t, x[:, -1] + 1)
    g = torch_generator(7)
    first, second = corpora.lm_batch(data, 4, 6, g), corpora.lm_batch(data, 4, 6, g)  # advancing
    assert not torch.equal(first[0], second[0])


def test_split_corpus():
    data = torch.arange(10)
    train, held_out = corpora.split_corpus(data, 0.9)
    assert torch.equal(train, data[:9]) and torch.equal(held_out, data[9:])
    with pytest.raises(ValueError, match="empty part"):
        corpora.split_corpus(data, 1.0)
    with pytest.raises(ValueError, match="train_frac"):
        corpora.split_corpus(data, 0.0)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="not a package"):
        corpora.stdlib_snippets(("no_such_package_xyz",))
    with pytest.raises(ValueError, match="not a package"):
        corpora.stdlib_chars("no_such_package_xyz")
    with pytest.raises(ValueError, match="longer than length=5"):
        corpora.random_windows(torch.arange(5), 2, 5, 0)
    with pytest.raises(TypeError, match="integer torch tensor"):
        corpora.random_windows(torch.zeros(10), 2, 3, 0)
    with pytest.raises(ValueError, match="targets must be one of"):
        corpora.lm_batch(torch.arange(10), 2, 3, 0, targets="first")
    with pytest.raises(TypeError, match="seed must be an int"):
        torch_generator(1.5)
    with pytest.raises(ValueError, match="max_bytes must be at least 1"):
        corpora.stdlib_bytes(0)
