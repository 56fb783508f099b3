"""CURLoRA (refimpl.lora.curlora): inverted-probability sampling of distinct indices."""

import pytest
import torch

from refimpl import lora


def test_curlora_sampling_prefers_low_energy_and_is_distinct():
    W = torch.ones(50, 40)
    W[:25] *= 100.0  # high-energy rows are rarely drawn under inverted probabilities
    rows, cols = lora.curlora_indices(W, 10, seed=0)
    assert len(set(rows.tolist())) == 10 and len(set(cols.tolist())) == 10
    assert (rows >= 25).all()
    again = lora.curlora_indices(W, rank=10, seed=0)
    assert (again[0] == rows).all() and (again[1] == cols).all()
    with pytest.raises(ValueError, match="rank=41 exceeds"):
        lora.curlora_indices(W, 41)
    with pytest.raises(ValueError, match="alpha"):
        lora.CURLoRAConfig(alpha=0)
