r"""Multi-head attention pooling with a low-rank affinity (Mehta et al., 2019, "LAMA").

A sentence of hidden states :math:`h_1, \dots, h_T \in \mathbb{R}^d` is summarised by
:math:`m` attention distributions that all query one learned global context vector
:math:`c \in \mathbb{R}^{d_c}`. Head :math:`j` scores token :math:`t` with a bilinear form,

.. math:: s_{tj} = c^\top W_j\, h_t ,

and with a separate :math:`W_j \in \mathbb{R}^{d_c\times d}` per head this costs
:math:`m\,d_c\,d` parameters. The low-rank affinity shares two factors between the heads,
:math:`W_j = U \operatorname{diag}(p_j) V^\top` with :math:`U \in \mathbb{R}^{d_c\times k}`,
:math:`V \in \mathbb{R}^{d\times k}` and one vector :math:`p_j \in \mathbb{R}^k` per head, so
that all heads come from one Hadamard product (low-rank bilinear pooling):

.. math:: s_t = P^\top\big((U^\top c) \odot (V^\top h_t)\big) \in \mathbb{R}^m ,
          \qquad (k(d_c + d) + k m \text{ parameters}).

Each head's weights are a softmax over the tokens, and the pooled representation is the
:math:`m\times d` matrix of attention-weighted sums, flattened. This is our reading of the
paper's abstract and of low-rank bilinear pooling; the paper's exact non-linearities may
differ (``activation`` adds a tanh on both projections, as in Kim et al.'s pooling).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from refimpl._validation import check_array
from refimpl.attention._checks import positive_int
from refimpl.seeding import as_generator


class AffinityPooling(nn.Module):
    """Pool (B, T, d) hidden states into (B, heads·d) with ``heads`` attention distributions.

    Parameters
    ----------
    d : int
        Width of the hidden states.
    heads : int
        Number of attention distributions m.
    rank : int or None
        ``None``: a separate bilinear ``W_j`` per head (the baseline). An int k: the
        low-rank affinity ``W_j = U diag(p_j) Vᵀ``.
    d_context : int, optional
        Width of the global context vector (default ``d``).
    activation : bool
        Apply tanh to ``Uᵀc`` and ``Vᵀh`` (low-rank form only); then the heads are no longer
        exactly bilinear.
    """

    def __init__(self, d: int, heads: int, rank: int | None = None, *,
                 d_context: int | None = None, activation: bool = False):
        super().__init__()
        self.d = positive_int(d, "d")
        self.heads = positive_int(heads, "heads")
        self.d_context = positive_int(d_context if d_context is not None else d, "d_context")
        self.rank = None if rank is None else positive_int(rank, "rank")
        if activation and rank is None:
            raise ValueError("activation=True needs a low-rank affinity (rank=k)")
        self.activation = activation
        self.context = nn.Parameter(torch.randn(self.d_context) / self.d_context**0.5)
        if self.rank is None:
            self.W = nn.Parameter(torch.randn(self.heads, self.d_context, self.d)
                                  / (self.d_context * self.d) ** 0.5)
        else:
            self.U = nn.Linear(self.d_context, self.rank, bias=False)
            self.V = nn.Linear(self.d, self.rank, bias=False)
            self.P = nn.Linear(self.rank, self.heads, bias=False)

    def head_matrices(self) -> torch.Tensor:
        """The per-head affinity matrices ``W_j`` (heads, d_context, d), materialised."""
        if self.rank is None:
            return self.W
        return torch.einsum("ck,jk,dk->jcd", self.U.weight.T, self.P.weight, self.V.weight.T)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Scores ``s_{tj}`` of shape (B, T, heads)."""
        if self.rank is None:
            return torch.einsum("c,jcd,btd->btj", self.context, self.W, h)
        uc, vh = self.U(self.context), self.V(h)
        if self.activation:
            uc, vh = torch.tanh(uc), torch.tanh(vh)
        return self.P(uc * vh)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None):
        """Return ``(pooled (B, heads·d), weights (B, T, heads))``.

        ``mask`` (B, T) is True for real tokens; padded positions get zero weight.
        """
        check_array(h, "h", ndim=3)
        if h.shape[-1] != self.d:
            raise ValueError(f"h must have width {self.d}; got shape {tuple(h.shape)}")
        s = self.scores(h)
        if mask is not None:
            if mask.shape != h.shape[:2] or mask.dtype != torch.bool:
                raise ValueError(f"mask must be a bool tensor of shape {tuple(h.shape[:2])}")
            if not bool(mask.any(dim=1).all()):
                raise ValueError("every sequence needs at least one unmasked token")
            s = s.masked_fill(~mask.unsqueeze(-1), float("-inf"))
        weights = torch.softmax(s, dim=1)
        pooled = torch.einsum("btj,btd->bjd", weights, h)
        return pooled.flatten(1), weights


def affinity_parameters(d: int, heads: int, rank: int | None, d_context: int | None = None) -> int:
    """Parameters of :class:`AffinityPooling`: ``d_c + m d_c d`` or ``d_c + k(d_c + d) + k m``."""
    dc = d if d_context is None else d_context
    if rank is None:
        return dc + heads * dc * d
    return dc + rank * (dc + d) + rank * heads


class SnippetClassifier(nn.Module):
    """Bytes → embedding → GRU → attention pooling → linear classifier (the paper's setting).

    ``pooling``: ``"lowrank"`` (low-rank affinity, ``rank`` k), ``"bilinear"`` (a separate
    bilinear form per head) or ``"mean"`` (no attention).
    """

    def __init__(self, n_classes: int, *, d_embed: int = 32, d_hidden: int = 64,
                 heads: int = 4, pooling: str = "lowrank", rank: int = 8):
        super().__init__()
        if pooling not in ("lowrank", "bilinear", "mean"):
            raise ValueError(f"pooling must be 'lowrank', 'bilinear' or 'mean'; got {pooling!r}")
        self.pooling = pooling
        self.embed = nn.Embedding(256, positive_int(d_embed, "d_embed"))
        self.gru = nn.GRU(d_embed, positive_int(d_hidden, "d_hidden"), batch_first=True)
        if pooling == "mean":
            self.pool = None
            width = d_hidden
        else:
            self.pool = AffinityPooling(d_hidden, heads, rank if pooling == "lowrank" else None)
            width = heads * d_hidden
        self.out = nn.Linear(width, positive_int(n_classes, "n_classes"))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.embed(tokens))
        pooled = h.mean(dim=1) if self.pool is None else self.pool(h)[0]
        return self.out(pooled)


def stdlib_snippets(packages: tuple[str, ...] = ("email", "json", "asyncio", "xml"),
                    length: int = 96, per_class: int = 300, seed=0):
    """A text-classification task from the Python standard library (no download).

    Draws ``per_class`` byte snippets of ``length`` from the sources of each stdlib package
    (its ``*.py`` files, recursively, in sorted order) and labels them by package. Returns
    ``(tokens (N, length) long tensor, labels (N,) long tensor)``, shuffled with ``seed``.
    The exact snippets depend on the Python version.
    """
    rng = as_generator(seed)
    root = Path(os.path.dirname(os.__file__))
    xs, ys = [], []
    for label, name in enumerate(packages):
        pkg = root / name
        if not pkg.is_dir():
            raise ValueError(f"{name!r} is not a package of this Python's standard library")
        text = b"".join(p.read_bytes() for p in sorted(pkg.rglob("*.py")))
        if len(text) <= length:
            raise ValueError(f"package {name!r} has fewer than {length} bytes of source")
        starts = rng.integers(0, len(text) - length, size=per_class)
        xs.append(np.stack([np.frombuffer(text[s:s + length], dtype=np.uint8) for s in starts]))
        ys.append(np.full(per_class, label))
    X, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    return torch.from_numpy(X[order].astype(np.int64)), torch.from_numpy(y[order].astype(np.int64))


def fit_classifier(model: nn.Module, X: torch.Tensor, y: torch.Tensor, *, train_frac: float = 0.75,
                   steps: int = 300, batch_size: int = 32, lr: float = 3e-3, seed: int = 0):
    """Train with Adam on the first ``train_frac`` of (X, y); return (losses, held-out accuracy)."""
    if not 0 < train_frac < 1:
        raise ValueError(f"train_frac must lie in (0, 1); got {train_frac}")
    n_train = int(train_frac * len(y))
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(positive_int(steps, "steps")):
        idx = torch.randint(0, n_train, (batch_size,), generator=gen)
        loss = nn.functional.cross_entropy(model(X[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        acc = float((model(X[n_train:]).argmax(-1) == y[n_train:]).float().mean())
    return losses, acc
