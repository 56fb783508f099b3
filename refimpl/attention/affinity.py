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

import torch
from torch import nn

from refimpl._validation import check_array, check_positive_int


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

    Raises
    ------
    ValueError, TypeError
        If a size is not a positive integer, or ``activation`` is asked without a rank.
    """

    def __init__(self, d: int, heads: int, rank: int | None = None, *,
                 d_context: int | None = None, activation: bool = False) -> None:
        super().__init__()
        self.d = check_positive_int(d, "d")
        self.heads = check_positive_int(heads, "heads")
        self.d_context = check_positive_int(d_context if d_context is not None else d,
                                            "d_context")
        self.rank = None if rank is None else check_positive_int(rank, "rank")
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
        """The per-head affinity matrices ``W_j``, materialised.

        Returns
        -------
        torch.Tensor
            ``(heads, d_context, d)``.
        """
        if self.rank is None:
            return self.W
        return torch.einsum("ck,jk,dk->jcd", self.U.weight.T, self.P.weight, self.V.weight.T)

    def scores(self, h: torch.Tensor) -> torch.Tensor:
        """Scores ``s_{tj}`` of every token under every head.

        Parameters
        ----------
        h : torch.Tensor
            Hidden states ``(B, T, d)``.

        Returns
        -------
        torch.Tensor
            ``(B, T, heads)``.
        """
        if self.rank is None:
            return torch.einsum("c,jcd,btd->btj", self.context, self.W, h)
        uc, vh = self.U(self.context), self.V(h)
        if self.activation:
            uc, vh = torch.tanh(uc), torch.tanh(vh)
        return self.P(uc * vh)

    def forward(self, h: torch.Tensor,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool the hidden states with every head's softmax over the tokens.

        Parameters
        ----------
        h : torch.Tensor
            Hidden states ``(B, T, d)``, floating point and finite.
        mask : torch.Tensor, optional
            Bool ``(B, T)``, True for real tokens; padded positions get zero weight.

        Returns
        -------
        tuple of torch.Tensor
            ``(pooled (B, heads·d), weights (B, T, heads))``.

        Raises
        ------
        ValueError
            If ``h`` has the wrong width or ``mask`` the wrong shape or dtype, or a sequence
            is entirely masked.
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
    """Parameters of :class:`AffinityPooling`: ``d_c + m d_c d`` or ``d_c + k(d_c + d) + k m``.

    Parameters
    ----------
    d : int
        Width of the hidden states.
    heads : int
        Number of heads m.
    rank : int or None
        The low-rank affinity's k; ``None`` for separate bilinear heads.
    d_context : int, optional
        Width of the context vector (default ``d``).

    Returns
    -------
    int
    """
    d, heads = check_positive_int(d, "d"), check_positive_int(heads, "heads")
    dc = d if d_context is None else check_positive_int(d_context, "d_context")
    if rank is None:
        return dc + heads * dc * d
    return dc + check_positive_int(rank, "rank") * (dc + d) + rank * heads
