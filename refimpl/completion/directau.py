r"""DirectAU: collaborative filtering by alignment and uniformity on the hypersphere.

Wang, Yu, Ma, Zhang, Chen, Liu & Ma (2022, KDD) measure the quality of user and item
representations by two properties borrowed from contrastive learning (Wang & Isola, 2020),
computed on the :math:`\ell_2`-normalised representations
:math:`\tilde f(u) = f(u) / \|f(u)\|` and :math:`\tilde f(i)`:

- **alignment** of the positive (observed) pairs,

  .. math:: \ell_{\text{align}} = \mathbb{E}_{(u, i) \sim p_{\text{pos}}}
            \|\tilde f(u) - \tilde f(i)\|^2,

- **uniformity** of users and of items, each spread over the sphere,

  .. math:: \ell_{\text{uniform}} = \tfrac12 \log \mathbb{E}_{u, u'} e^{-2\|\tilde f(u)
            - \tilde f(u')\|^2} + \tfrac12 \log \mathbb{E}_{i, i'} e^{-2\|\tilde f(i)
            - \tilde f(i')\|^2},

and show that perfectly aligned and uniform encoders minimise the BPR loss. *DirectAU*
optimises the two properties directly,

.. math:: \mathcal L = \ell_{\text{align}} + \gamma\, \ell_{\text{uniform}},

on batches of observed pairs only: no negative sampling, the uniformity term is computed
between the users (and between the items) of the batch, over the distinct positions
:math:`j < l` of the batch (a user who occurs twice in a batch contributes a zero distance,
as in the authors' implementation). The encoder here is the paper's simplest, plain matrix
factorisation: one free embedding per user and per item (:math:`f(u) = p_u`,
:math:`f(i) = q_i`), trained by Adam.

The paper's claim is that this loss with an MF encoder beats BPR and the other CF losses on
recall and NDCG; the chapter's notebook compares them, the tests here check the loss pieces
and that the learnt scores recommend well.

Scores: :func:`directau` returns the normalised embeddings by default, so that
``MF.scores`` is the cosine :math:`\tilde f(u)^\top \tilde f(i)
= 1 - \tfrac12 \|\tilde f(u) - \tilde f(i)\|^2`, the quantity the loss aligns;
``normalize=False`` returns the raw embeddings, whose dot product is what the authors'
released code ranks by.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from refimpl._validation import check_positive, check_positive_int, check_rank
from refimpl.completion.model import MF, as_interactions
from refimpl.results import Info
from refimpl.seeding import torch_generator

if TYPE_CHECKING:
    import torch

    from refimpl._typing import TorchSeed

__all__ = ["alignment", "directau", "directau_loss", "uniformity"]


def alignment(x: torch.Tensor, y: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    r"""Alignment loss :math:`\frac1b \sum_j \|x_j - y_j\|^\alpha` of paired rows.

    Parameters
    ----------
    x, y : (b, d) torch.Tensor
        Paired representations (row ``j`` of ``x`` with row ``j`` of ``y``): in DirectAU the
        normalised user and item embeddings of the ``b`` positive pairs of a batch. They are
        used as given (normalise them first).
    alpha : float
        The exponent, ``> 0`` (2 in the paper).

    Returns
    -------
    torch.Tensor
        A scalar, differentiable in ``x`` and ``y``.

    Raises
    ------
    ValueError
        If the shapes differ or are not 2-D, or ``alpha <= 0``.
    """
    alpha = check_positive(alpha, "alpha")
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x and y must be 2-D of equal shape; got {tuple(x.shape)}, "
                         f"{tuple(y.shape)}")
    sq = (x - y).pow(2).sum(dim=1)
    return sq.mean() if alpha == 2.0 else sq.pow(alpha / 2).mean()


def uniformity(x: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    r"""Uniformity loss :math:`\log \frac{2}{b(b-1)} \sum_{j<l} e^{-t\|x_j - x_l\|^2}`.

    Parameters
    ----------
    x : (b, d) torch.Tensor
        Representations, ``b >= 2`` (normalise them first); every pair of distinct
        positions counts, so a repeated row contributes a zero distance.
    t : float
        The temperature, ``> 0`` (2 in the paper).

    Returns
    -------
    torch.Tensor
        A scalar, differentiable in ``x``; it lies in ``[-4t, 0]`` for unit rows, lower is
        more uniform (0 for a collapsed set).

    Raises
    ------
    ValueError
        If ``x`` is not 2-D with at least two rows, or ``t <= 0``.
    """
    import torch

    t = check_positive(t, "t")
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"x must be 2-D with at least 2 rows; got shape {tuple(x.shape)}")
    b = x.shape[0]
    # squared distances from the Gram matrix (smooth at zero distance, unlike a norm)
    sqn = x.pow(2).sum(dim=1)
    d2 = (sqn[:, None] + sqn[None, :] - 2.0 * (x @ x.T)).clamp(min=0.0)
    j, l = torch.triu_indices(b, b, offset=1, device=x.device)
    return torch.logsumexp(-t * d2[j, l], dim=0) - math.log(b * (b - 1) / 2)


def directau_loss(user_e: torch.Tensor, item_e: torch.Tensor,
                  gamma: float = 1.0) -> torch.Tensor:
    r"""The DirectAU loss :math:`\ell_{\text{align}} + \frac{\gamma}{2}(\ell_u + \ell_i)`.

    Parameters
    ----------
    user_e, item_e : (b, d) torch.Tensor
        Raw (unnormalised) embeddings of the users and items of ``b >= 2`` positive pairs;
        they are :math:`\ell_2`-normalised here.
    gamma : float
        Weight of the uniformity term, ``>= 0``.

    Returns
    -------
    torch.Tensor
        A scalar.

    Raises
    ------
    ValueError
        As :func:`alignment` and :func:`uniformity`, or if ``gamma < 0``.
    """
    import torch.nn.functional as F

    gamma = check_positive(gamma, "gamma", allow_zero=True)
    u = F.normalize(user_e, dim=-1)
    i = F.normalize(item_e, dim=-1)
    return alignment(u, i) + gamma * (uniformity(u) + uniformity(i)) / 2


@overload
def directau(R: Any, rank: int, *, gamma: float = ..., lr: float = ..., batch_size: int = ...,
             n_epochs: int = ..., weight_decay: float = ..., tol: float = ...,
             normalize: bool = ..., seed: TorchSeed = ...,
             return_info: Literal[False] = ...) -> MF: ...
@overload
def directau(R: Any, rank: int, *, gamma: float = ..., lr: float = ..., batch_size: int = ...,
             n_epochs: int = ..., weight_decay: float = ..., tol: float = ...,
             normalize: bool = ..., seed: TorchSeed = ...,
             return_info: Literal[True]) -> tuple[MF, Info]: ...
@overload
def directau(R: Any, rank: int, *, gamma: float = ..., lr: float = ..., batch_size: int = ...,
             n_epochs: int = ..., weight_decay: float = ..., tol: float = ...,
             normalize: bool = ..., seed: TorchSeed = ...,
             return_info: bool) -> MF | tuple[MF, Info]: ...
def directau(R: Any, rank: int, *, gamma: float = 1.0, lr: float = 1e-3,
             batch_size: int = 256, n_epochs: int = 100, weight_decay: float = 0.0,
             tol: float = 0.0, normalize: bool = True, seed: TorchSeed = None,
             return_info: bool = False) -> MF | tuple[MF, Info]:
    r"""Fit MF embeddings by the DirectAU loss (Wang et al., 2022).

    Every observed entry of ``R`` with a positive value is a positive pair (the values
    themselves are not used). Each epoch shuffles the positive pairs and splits them into
    ``ceil(nnz / batch_size)`` batches of nearly equal size (so every batch has at least
    two pairs); each batch takes one Adam step on :func:`directau_loss`. The embeddings
    start as float32 :math:`\mathcal N(0, \sigma^2)` with the Xavier-normal
    :math:`\sigma = \sqrt{2 / (n + d)}` of each table, drawn, like the shuffles, from a
    private generator: the global torch random state is neither read nor changed.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Implicit feedback, users × items.
    rank : int
        Embedding dimension ``d >= 1``.
    gamma : float
        Weight of the uniformity term, ``>= 0`` (``gamma=0`` aligns only and collapses).
    lr : float
        Adam's learning rate, ``> 0``.
    batch_size : int
        Positive pairs per batch (at most; see above), ``>= 2``.
    n_epochs : int
        Maximum passes over the positive pairs, ``>= 1``.
    weight_decay : float
        Adam's L2 penalty on the embedding tables, ``>= 0``.
    tol : float
        Stop once an epoch's mean loss changes by at most ``tol · max(1, |loss|)`` from
        the previous epoch's, ``>= 0`` (0 runs every epoch unless the loss is unchanged).
    normalize : bool
        Return the :math:`\ell_2`-normalised embeddings (scores = cosines, the default) or
        the raw ones.
    seed : int, numpy.random.Generator, torch.Generator or None
        Source of the initial embeddings and of the shuffles.
    return_info : bool
        Also return an :class:`refimpl.results.Info`; ``errors`` are the mean training
        loss :math:`\mathcal L` over the batches of each epoch.

    Returns
    -------
    MF
        ``P`` (n_users × d) and ``Q`` (n_items × d) as float64, no biases.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``R`` is not Interactions or a sparse matrix, or an integer argument is not an
        integer.
    ValueError
        If ``R`` is invalid or has fewer than two positive entries, or an argument is out
        of range.
    """
    import torch

    X = as_interactions(R)
    rank = check_rank(rank, "rank", min(X.n_users, X.n_items))
    gamma = check_positive(gamma, "gamma", allow_zero=True)
    lr = check_positive(lr, "lr")
    batch_size = check_positive_int(batch_size, "batch_size")
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (uniformity needs pairs); got "
                         f"{batch_size}")
    n_epochs = check_positive_int(n_epochs, "n_epochs")
    weight_decay = check_positive(weight_decay, "weight_decay", allow_zero=True)
    tol = check_positive(tol, "tol", allow_zero=True)
    pos = X.values > 0
    users = torch.from_numpy(X.users[pos])
    items = torch.from_numpy(X.items[pos])
    nnz = int(users.shape[0])
    if nnz < 2:
        raise ValueError(f"R needs at least 2 positive entries; got {nnz}")
    g = torch_generator(seed)

    def init(n: int) -> torch.Tensor:
        std = math.sqrt(2.0 / (n + rank))
        w = torch.randn(n, rank, generator=g, dtype=torch.float32) * std
        return w.requires_grad_(True)

    P, Q = init(X.n_users), init(X.n_items)
    opt = torch.optim.Adam([P, Q], lr=lr, weight_decay=weight_decay)
    n_batches = math.ceil(nnz / batch_size)
    errors: list[float] = []
    converged = False
    for _ in range(n_epochs):
        perm = torch.randperm(nnz, generator=g)
        total = 0.0
        for idx in torch.tensor_split(perm, n_batches):
            opt.zero_grad()
            loss = directau_loss(P[users[idx]], Q[items[idx]], gamma)
            loss.backward()
            opt.step()
            total += float(loss.detach())
        errors.append(total / n_batches)
        if len(errors) >= 2 and abs(errors[-1] - errors[-2]) <= tol * max(1.0, abs(errors[-1])):
            converged = True
            break
    with torch.no_grad():
        Pf, Qf = P.detach(), Q.detach()
        if normalize:
            Pf = torch.nn.functional.normalize(Pf, dim=-1)
            Qf = torch.nn.functional.normalize(Qf, dim=-1)
        model = MF(Pf.numpy().astype(np.float64), Qf.numpy().astype(np.float64))
    return (model, Info(len(errors), converged, tuple(errors))) if return_info else model
