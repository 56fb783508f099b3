"""The small models: TinyLM decodes with its caches as in the full forward; same seed, same
model; CharMLP and SnippetClassifier shapes; bad tokens."""

import pytest
import torch

from refimpl.attention import kv_cache_elements
from refimpl.experiments import CharMLP, SnippetClassifier, TinyLM, stdlib_snippets

D = 32
CONFIGS = {
    "mha": {"n_heads": 4},
    "mla": {"n_heads": 4, "head_dim": 8, "kv_latent_dim": 12, "q_latent_dim": 10,
            "rope_head_dim": 4},
    "mfa-kr": {"n_heads": 6, "head_dim": 16},
    "tpa": {"n_heads": 4, "head_dim": 8, "q_rank": 3, "k_rank": 2, "v_rank": 1},
}


@pytest.mark.parametrize("kind", CONFIGS)
def test_tiny_lm_decoding_equals_full_forward(kind):
    m = TinyLM(D, 2, kind, CONFIGS[kind], seed=3).double()
    tokens = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = m(tokens)
        caches = m.new_caches()
        steps = [m(tokens[:, :5], caches)] + [m(tokens[:, t:t + 1], caches) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), full, rtol=0, atol=1e-11)
    assert sum(c.numel() for c in caches) == 2 * 12 * m.cache_elements_per_token
    assert m.cache_elements_per_token == 2 * kv_cache_elements(
        kind, **{"head_dim": D // 4, **CONFIGS[kind]})
    # Same seed, same model.
    again = TinyLM(D, 2, kind, CONFIGS[kind], seed=3).double()
    torch.testing.assert_close(again(tokens), full, rtol=0, atol=0)


def test_tiny_lm_rejects_bad_tokens():
    m = TinyLM(16, 1, "mqa", {"n_heads": 2})
    with pytest.raises(TypeError, match="integer"):
        m(torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\[0, 256\)"):
        m(torch.tensor([[1, 256]]))
    with pytest.raises(ValueError, match="one cache per layer"):
        m(torch.tensor([[1, 2]]), [])
    with pytest.raises(ValueError, match="n_layers must be at least 1"):
        TinyLM(16, 0)


def test_char_mlp_shapes_seed_and_bad_tokens():
    m = CharMLP(context=8, d_embed=4, d_hidden=16, vocab_size=128, seed=1)
    tokens = torch.randint(0, 128, (5, 8), generator=torch.Generator().manual_seed(0))
    assert m(tokens).shape == (5, 128)
    state = torch.random.get_rng_state()
    again = CharMLP(context=8, d_embed=4, d_hidden=16, vocab_size=128, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)  # a private generator
    torch.testing.assert_close(again(tokens), m(tokens), rtol=0, atol=0)
    # seed s draws what torch.manual_seed(s) followed by the default initialisation draws
    torch.manual_seed(1)
    ref = torch.nn.Embedding(128, 4)
    torch.testing.assert_close(ref.weight, m.embed.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="8 columns"):
        m(tokens[:, :7])
    with pytest.raises(ValueError, match=r"\[0, 128\)"):
        m(tokens + 128)


def test_snippet_classifier():
    X, _ = stdlib_snippets(("json", "email"), length=32, per_class=10, seed=1)
    for pooling in ("lowrank", "bilinear", "mean"):
        logits = SnippetClassifier(2, d_embed=8, d_hidden=8, pooling=pooling)(X)
        assert logits.shape == (20, 2)
    with pytest.raises(ValueError, match="pooling must be"):
        SnippetClassifier(2, pooling="max")
