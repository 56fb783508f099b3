"""MHA, GQA and MQA: the two special cases are GQA with g = n_h and g = 1; bad configurations."""

import pytest
import torch

from refimpl.attention import GroupedQueryAttention, MultiHeadAttention, MultiQueryAttention

from .attention_layers import D


@pytest.mark.parametrize("cls,g", [(MultiHeadAttention, 4), (MultiQueryAttention, 1)])
def test_mha_and_mqa_are_gqa(cls, g):
    torch.manual_seed(0)
    special = cls(D, 4).double()
    torch.manual_seed(0)
    gqa = GroupedQueryAttention(D, 4, g).double()
    x = torch.randn(2, 5, D, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(special(x), gqa(x), rtol=0, atol=0)
    assert special.cache_elements_per_token == 2 * g * (D // 4)


@pytest.mark.parametrize("make,match", [
    (lambda: MultiHeadAttention(30, 4), "n_heads=4 must divide d_model=30"),
    (lambda: GroupedQueryAttention(32, 8, 3), "n_kv_heads=3 must divide n_heads=8"),
    (lambda: GroupedQueryAttention(32, 0, 1), "n_heads must be at least 1"),
    (lambda: GroupedQueryAttention(32, 4.0, 1), "n_heads must be an integer"),
])
def test_bad_configurations_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
