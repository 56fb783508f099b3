"""The KV cache: grows by doubling and keeps its contents; sizes; refuses mismatched appends."""

import pytest
import torch

from refimpl.attention import KVCache


def test_kv_cache_grows_and_keeps_its_contents():
    c = KVCache({"k": (2, 3)})
    chunks = [torch.randn(2, n, 2, 3) for n in (1, 20, 1, 50)]
    for ch in chunks:
        out = c.append(k=ch)
    torch.testing.assert_close(out["k"], torch.cat(chunks, dim=1))
    assert c.length == 72 and c.numel() == 2 * 72 * 6 and c.nbytes() == 4 * c.numel()
    with pytest.raises(ValueError, match="fields"):
        c.append(v=chunks[0])
    with pytest.raises(ValueError, match="shape"):
        c.append(k=torch.randn(2, 1, 3, 2))
    with pytest.raises(ValueError, match="batch"):
        c.append(k=torch.randn(3, 1, 2, 3))


def test_empty_cache_and_bad_fields():
    c = KVCache({"a": (3,), "b": (2, 2)})
    assert c.elements_per_token == 7 and c.batch_size == 0 and c.numel() == 0 and c.nbytes() == 0
    with pytest.raises(ValueError, match="same number of tokens"):
        c.append(a=torch.zeros(1, 2, 3), b=torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="at least one field"):
        KVCache({})
    with pytest.raises(ValueError, match="cache field 'k'"):
        KVCache({"k": (0,)})
