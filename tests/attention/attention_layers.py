"""Shared by the attention tests: one small configuration per variant, and decoding helpers."""

import torch

from refimpl.attention import KINDS, MatryoshkaKVAttention, make_attention

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
# Every layer: the kinds of make_attention, MLA in its absorbed form as well, and MatryoshkaKV
# (truncated, around a GQA layer).
VARIANTS = (*KINDS, "mla-absorbed", "matryoshka")


def build(kind, dtype=torch.float64, seed=0, **cfg):
    torch.manual_seed(seed)
    m = make_attention(kind, D, **(cfg or CONFIGS[kind])).to(dtype)
    if kind == "mfa-kr":  # α starts at 0 (value = key); make the value path non-trivial
        torch.nn.init.normal_(m.alpha)
    return m


def build_variant(name, dtype=torch.float64, seed=0):
    """:func:`build` for a name of :data:`VARIANTS`, made in float64 and then cast to ``dtype``
    (so every dtype gets the same weights)."""
    if name == "mla-absorbed":
        m = build("mla", seed=seed)
        m.absorbed = True
    elif name == "matryoshka":
        m = MatryoshkaKVAttention(build("gqa", seed=seed), key_rank=5, value_rank=3)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():  # orthogonal bases that are not the identity
            m.u_k.weight = torch.linalg.qr(torch.randn(2, 8, 8, dtype=torch.float64,
                                                       generator=g))[0]
            m.u_v.weight = torch.linalg.qr(torch.randn(2, 8, 8, dtype=torch.float64,
                                                       generator=g))[0]
    else:
        m = build(name, seed=seed)
    return m.to(dtype)


def decode(m, x, prefill):
    """Prefill ``prefill`` tokens at once, then one token at a time."""
    cache = m.new_cache()
    outs = [m(x[:, :prefill], cache)] if prefill else []
    outs += [m(x[:, t:t + 1], cache) for t in range(prefill, x.shape[1])]
    return torch.cat(outs, dim=1), cache


def decode_chunks(m, x, sizes):
    """Feed ``x`` through one cache in consecutive chunks of the given sizes (the rest of the
    sequence one token at a time)."""
    cache, outs, t = m.new_cache(), [], 0
    for size in (*sizes, *([1] * (x.shape[1] - sum(sizes)))):
        outs.append(m(x[:, t:t + size], cache))
        t += size
    return torch.cat(outs, dim=1), cache
