"""Shared by the attention tests: one small configuration per variant, and decoding helpers."""

import torch

from refimpl.attention import make_attention

D = 32
CONFIGS = {
    "mha": {"n_heads": 4},
    "gqa": {"n_heads": 4, "n_kv_heads": 2},
    "mqa": {"n_heads": 4},
    "mla": {"n_heads": 4, "head_dim": 8, "kv_latent_dim": 12, "q_latent_dim": 10,
            "rope_head_dim": 4},
    "mfa": {"n_heads": 6, "head_dim": 16, "q_latent_dim": 12},
    "mfa-kr": {"n_heads": 6, "head_dim": 16},
    "tpa": {"n_heads": 4, "head_dim": 8, "q_rank": 3, "k_rank": 2, "v_rank": 1},
}


def build(kind, dtype=torch.float64, seed=0, **cfg):
    torch.manual_seed(seed)
    m = make_attention(kind, D, **(cfg or CONFIGS[kind])).to(dtype)
    if kind == "mfa-kr":  # α starts at 0 (value = key); make the value path non-trivial
        torch.nn.init.normal_(m.alpha)
    return m


def decode(m, x, prefill):
    """Prefill ``prefill`` tokens at once, then one token at a time."""
    cache = m.new_cache()
    outs = [m(x[:, :prefill], cache)] if prefill else []
    outs += [m(x[:, t:t + 1], cache) for t in range(prefill, x.shape[1])]
    return torch.cat(outs, dim=1), cache
