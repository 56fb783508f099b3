"""The small models the experiments train: byte/char language models and a snippet classifier.

- :class:`TinyLM`: a pre-norm decoder whose attention variant is a parameter (chapter 11);
- :class:`CharMLP`: a fixed-context character model with three linear layers, the model
  chapter 09's adapters are tried on;
- :class:`SnippetClassifier`: bytes → GRU → attention pooling → classes (chapter 11's LAMA).

Each draws its initial parameters from its own ``seed`` (except :class:`SnippetClassifier`,
which draws from torch's global generator), so the same seed gives the same model.
"""

from __future__ import annotations

import torch
from torch import nn

from refimpl._validation import check_choice, check_positive_int, check_tokens
from refimpl.attention import KVCache, RMSNorm, make_attention
from refimpl.attention.affinity import AffinityPooling


class _Block(nn.Module):
    def __init__(self, d_model: int, attention: nn.Module, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(d_model), RMSNorm(d_model)
        self.attn = attention
        self.mlp = nn.Sequential(nn.Linear(d_model, mlp_ratio * d_model, bias=False), nn.GELU(),
                                 nn.Linear(mlp_ratio * d_model, d_model, bias=False))

    def forward(self, x, cache=None):
        x = x + self.attn(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))


class TinyLM(nn.Module):
    """Pre-norm decoder: byte embedding → ``n_layers`` × (attention, MLP) → tied output head.

    Positions enter only through each attention variant's RoPE. ``forward(tokens)`` is the
    training forward; ``forward(tokens, caches)`` continues from the cached prefix
    (``caches`` from :meth:`new_caches`) and gives the same logits as the full forward.

    Parameters
    ----------
    d_model : int
        Model width.
    n_layers : int
        Number of (attention, MLP) blocks.
    attention : str
        Variant name from :data:`refimpl.attention.KINDS`.
    attention_kwargs : dict, optional
        The variant's configuration, as for :func:`refimpl.attention.make_attention`.
    vocab_size : int
        Number of token values (256 for bytes).
    mlp_ratio : int
        Hidden width of each MLP in units of ``d_model``.
    seed : int
        Seed of the private generator the initial parameters are drawn from.
    """

    def __init__(self, d_model: int = 64, n_layers: int = 2, attention: str = "mha",
                 attention_kwargs: dict | None = None, *, vocab_size: int = 256, mlp_ratio: int = 4,
                 seed: int = 0) -> None:
        super().__init__()
        self.d_model = check_positive_int(d_model, "d_model")
        self.n_layers = check_positive_int(n_layers, "n_layers")
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        mlp_ratio = check_positive_int(mlp_ratio, "mlp_ratio")
        self.attention = attention
        kw = dict(attention_kwargs or {})
        # Parameters drawn from a private generator: the same seed gives the same model.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, d_model)
            nn.init.normal_(self.embed.weight, std=d_model**-0.5)
            self.blocks = nn.ModuleList(
                _Block(d_model, make_attention(attention, d_model, **kw), mlp_ratio)
                for _ in range(n_layers))
        self.norm = RMSNorm(d_model)

    def new_caches(self) -> list[KVCache]:
        """One empty :class:`~refimpl.attention.KVCache` per layer, for decoding.

        Returns
        -------
        list of KVCache
        """
        # self.blocks holds _Block modules (a ModuleList yields plain Modules to mypy)
        return [b.attn.new_cache() for b in self.blocks]  # type: ignore[union-attr, operator]

    @property
    def cache_elements_per_token(self) -> int:
        """KV-cache elements per token summed over layers."""
        # as in new_caches
        return sum(b.attn.cache_elements_per_token  # type: ignore[union-attr, misc]
                   for b in self.blocks)

    def forward(self, tokens: torch.Tensor, caches: list[KVCache] | None = None) -> torch.Tensor:
        """Next-token logits at every position.

        Parameters
        ----------
        tokens : torch.Tensor
            Integer tokens ``(B, T)`` in ``[0, vocab_size)``.
        caches : list of KVCache, optional
            From :meth:`new_caches`; ``tokens`` continue the cached prefix, whose length the
            caches hold, and are appended to it.

        Returns
        -------
        torch.Tensor
            Logits ``(B, T, vocab_size)``.

        Raises
        ------
        TypeError, ValueError
            If ``tokens`` are not integer ``(B, T)`` values in range, or ``caches`` does not
            hold one cache per layer.
        """
        check_tokens(tokens, "tokens", ndim=2, vocab_size=self.vocab_size)
        if caches is not None and len(caches) != self.n_layers:
            raise ValueError(f"need one cache per layer ({self.n_layers}); got {len(caches)}")
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.T


class CharMLP(nn.Module):
    """A fixed-context character model: embed the last ``context`` tokens, two hidden layers.

    ``logits = out(relu(fc2(relu(fc1(flatten(embed(tokens)))))))``; the three linear layers
    ``fc1`` (``context·d_embed → d_hidden``), ``fc2`` (``d_hidden → d_hidden``) and ``out``
    (``d_hidden → vocab_size``) are what chapter 09's adapters wrap.

    Parameters
    ----------
    context : int
        Tokens the model sees.
    d_embed : int
        Width of the token embedding.
    d_hidden : int
        Width of the two hidden layers.
    vocab_size : int
        Number of token values (128 for :func:`~refimpl.experiments.stdlib_chars`).
    seed : int
        Seed of the private generator the initial parameters are drawn from (PyTorch's
        default initialisation).
    """

    def __init__(self, context: int = 16, d_embed: int = 24, d_hidden: int = 256,
                 vocab_size: int = 128, *, seed: int = 0) -> None:
        super().__init__()
        self.context = check_positive_int(context, "context")
        self.vocab_size = check_positive_int(vocab_size, "vocab_size")
        d_embed = check_positive_int(d_embed, "d_embed")
        d_hidden = check_positive_int(d_hidden, "d_hidden")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.embed = nn.Embedding(vocab_size, d_embed)
            self.fc1 = nn.Linear(context * d_embed, d_hidden)
            self.fc2 = nn.Linear(d_hidden, d_hidden)
            self.out = nn.Linear(d_hidden, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the token that follows each row of ``tokens``.

        Parameters
        ----------
        tokens : torch.Tensor
            Integer tokens ``(B, context)`` in ``[0, vocab_size)``.

        Returns
        -------
        torch.Tensor
            ``(B, vocab_size)``.
        """
        check_tokens(tokens, "tokens", ndim=2, vocab_size=self.vocab_size,
                     length=self.context)
        h = torch.relu(self.fc1(self.embed(tokens).flatten(1)))
        return self.out(torch.relu(self.fc2(h)))


class SnippetClassifier(nn.Module):
    """Bytes → embedding → GRU → attention pooling → linear classifier (LAMA's setting).

    Parameters
    ----------
    n_classes : int
        Number of classes.
    d_embed : int
        Width of the byte embedding.
    d_hidden : int
        Width of the GRU's hidden state.
    heads : int
        Attention distributions of the pooling.
    pooling : {"lowrank", "bilinear", "mean"}
        ``"lowrank"``: :class:`~refimpl.attention.AffinityPooling` with the low-rank affinity
        of rank ``rank``; ``"bilinear"``: a separate bilinear form per head; ``"mean"``: the
        mean of the hidden states (no attention).
    rank : int
        k of the low-rank affinity.
    """

    def __init__(self, n_classes: int, *, d_embed: int = 32, d_hidden: int = 64,
                 heads: int = 4, pooling: str = "lowrank", rank: int = 8) -> None:
        super().__init__()
        self.pooling = check_choice(pooling, "pooling", ("lowrank", "bilinear", "mean"))
        self.embed = nn.Embedding(256, check_positive_int(d_embed, "d_embed"))
        self.gru = nn.GRU(d_embed, check_positive_int(d_hidden, "d_hidden"), batch_first=True)
        if pooling == "mean":
            self.pool = None
            width = d_hidden
        else:
            self.pool = AffinityPooling(d_hidden, heads, rank if pooling == "lowrank" else None)
            width = heads * d_hidden
        self.out = nn.Linear(width, check_positive_int(n_classes, "n_classes"))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Class logits of each byte sequence.

        Parameters
        ----------
        tokens : torch.Tensor
            Integer bytes ``(B, T)``.

        Returns
        -------
        torch.Tensor
            ``(B, n_classes)``.
        """
        h, _ = self.gru(self.embed(tokens))
        pooled = h.mean(dim=1) if self.pool is None else self.pool(h)[0]
        return self.out(pooled)
