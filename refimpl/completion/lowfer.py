r"""LowFER: link prediction by low-rank (factorised) bilinear pooling.

A knowledge graph is a set of triples :math:`(s, r, o)`: subject entity, relation, object
entity. Link prediction scores unseen triples from embeddings :math:`e \in \mathbb R^{d_e}`
of the entities and :math:`r \in \mathbb R^{d_r}` of the relations. LowFER (Amin,
Varanasi, Dunfield & Neumann, 2020, ICML) fuses subject and relation by the multi-modal
factorised bilinear pooling of Yu et al. (2017):

.. math:: z = S^k\big(\operatorname{diag}(U^\top e_s)\, V^\top r\big) = S^k\big(U^\top e_s
          \odot V^\top r\big), \qquad g(s, r, o) = z^\top e_o,

with :math:`U \in \mathbb R^{d_e \times k d_e}`, :math:`V \in \mathbb R^{d_r \times k d_e}`
and :math:`S^k` the sum pooling of the :math:`k d_e` entries over non-overlapping windows
of :math:`k` consecutive ones (so :math:`z \in \mathbb R^{d_e}`). Entry :math:`c` of
:math:`z` is :math:`e_s^\top W_c\, r` with :math:`W_c = \sum_{m<k} U_{:, ck+m}
V_{:, ck+m}^\top`, a rank-:math:`k` matrix: LowFER *is* a TuckER model (Balažević, Allen &
Hospedales, 2019), :math:`g = W \times_1 e_s \times_2 r \times_3 e_o`, whose core
:math:`W \in \mathbb R^{d_e \times d_r \times d_e}` has slices of rank at most :math:`k`
(:meth:`LowFER.core`); with :math:`k = \min(d_e, d_r)` every TuckER core is reached
(:func:`lowfer_factors_from_core`, from the SVD of each slice), and a smaller :math:`k`
gives the best rank-:math:`k` approximation of each slice. The paper proves the model
fully expressive and reports results on par with TuckER at a fraction of the parameters.

Training follows the paper (as TuckER does): **1-N scoring** (one forward pass scores a
pair :math:`(s, r)` against every entity), the Bernoulli negative log-likelihood of
:math:`\sigma(g)` against the multi-hot vector of the known objects with **label
smoothing** :math:`y \leftarrow (1-\epsilon) y + 1/n_e`, reciprocal relations (each
:math:`(s, r, o)` also trains :math:`(o, r^{-1}, s)`, so subject queries are object queries
of :math:`r^{-1}`), Adam with an exponential learning-rate decay, and, as in the authors'
implementation, batch normalisation and dropout on :math:`e_s` (input dropout), on the
:math:`k d_e` product (first hidden dropout) and on :math:`z` (second), and the power
(signed square root) and :math:`\ell_2` normalisation of MFB on :math:`z`
(``normalize=True``). With ``batch_norm=False, normalize=False`` and in evaluation mode
the score is exactly :math:`g` above.

For comparison, :class:`DistMult` (Yang et al., 2015), :math:`g = \langle e_s, r, e_o
\rangle`, is symmetric in :math:`s` and :math:`o` and so cannot tell :math:`(s, r, o)` from
:math:`(o, r, s)`. :func:`link_prediction_metrics` is the standard *filtered* protocol
(Bordes et al., 2013): the rank of the true entity among all entities, the other known true
answers removed, averaged as MRR, MR and hits@k over object (and subject) queries.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Literal, NamedTuple, Protocol, overload

import numpy as np
import torch
from torch import nn

from refimpl._typing import ArrayLike, NDArray
from refimpl._validation import (
    check_choice,
    check_fraction,
    check_positive,
    check_positive_int,
)
from refimpl.results import Info
from refimpl.seeding import SeedLike, as_generator, torch_generator

__all__ = ["KG", "DistMult", "LinkScorer", "LowFER", "fit_distmult", "fit_lowfer",
           "link_prediction_metrics", "lowfer_factors_from_core", "synthetic_kg"]


class LinkScorer(Protocol):
    """What :func:`link_prediction_metrics` needs: scores of every candidate entity."""

    def score_objects(self, s: ArrayLike, r: ArrayLike) -> NDArray[np.float64]:
        """Scores ``(b, n_entities)`` of every object for the queries ``(s[t], r[t], ?)``."""
        ...

    def score_subjects(self, o: ArrayLike, r: ArrayLike) -> NDArray[np.float64]:
        """Scores ``(b, n_entities)`` of every subject for the queries ``(?, r[t], o[t])``."""
        ...


# --------------------------------------------------------------------------- models


class _OneToN(nn.Module):
    """Shared 1-N machinery: relation indexing with reciprocals, and the two query kinds."""

    n_entities: int
    n_relations: int
    reciprocal: bool

    def logits(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Scores ``(b, n_entities)`` of every object; ``r`` may index a reciprocal."""
        raise NotImplementedError

    def forward(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """1-N scores (logits) of every object entity for the pairs ``(s[t], r[t])``.

        Parameters
        ----------
        s, r : (b,) int64 torch.Tensor
            Subjects and relations (``r >= n_relations`` are the reciprocals
            ``r - n_relations`` when the model has them).

        Returns
        -------
        (b, n_entities) torch.Tensor
        """
        return self.logits(s, r)

    def _eval_scores(self, fn: Any) -> NDArray[np.float64]:
        was = self.training
        self.eval()
        try:
            with torch.no_grad():
                return fn().double().numpy()
        finally:
            self.train(was)

    def score_objects(self, s: ArrayLike, r: ArrayLike) -> NDArray[np.float64]:
        """Scores of every object for the queries ``(s[t], r[t], ?)``, in evaluation mode.

        Parameters
        ----------
        s, r : (b,) int arrays
            Subjects and (original) relations.

        Returns
        -------
        (b, n_entities) float64 array
        """
        s_t, r_t = _as_index(s, "s", self.n_entities), _as_index(r, "r", self.n_relations)
        return self._eval_scores(lambda: self.logits(s_t, r_t))

    def score_subjects(self, o: ArrayLike, r: ArrayLike) -> NDArray[np.float64]:
        """Scores of every subject for the queries ``(?, r[t], o[t])``, in evaluation mode.

        With reciprocal relations these are the object scores of :math:`(o, r^{-1}, ?)`
        (how the model was trained to answer them); without, every entity is scored as the
        subject of ``(·, r, o)`` (``n_entities`` forward passes per query).

        Parameters
        ----------
        o, r : (b,) int arrays
            Objects and (original) relations.

        Returns
        -------
        (b, n_entities) float64 array
        """
        o_t, r_t = _as_index(o, "o", self.n_entities), _as_index(r, "r", self.n_relations)
        if self.reciprocal:
            return self._eval_scores(lambda: self.logits(o_t, r_t + self.n_relations))
        every = torch.arange(self.n_entities)

        def rows() -> torch.Tensor:
            out = [self.logits(every, torch.full_like(every, int(rr)))[:, int(oo)]
                   for oo, rr in zip(o_t, r_t, strict=True)]
            return torch.stack(out)

        return self._eval_scores(rows)


def _as_index(x: ArrayLike, name: str, n: int) -> torch.Tensor:
    a = np.asarray(x)
    if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D integer array; got shape {a.shape}, dtype "
                         f"{a.dtype}")
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"{name}: an index lies outside [0, {n})")
    return torch.from_numpy(a.astype(np.int64))


def _xavier(n: int, d: int, g: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(n, d, generator=g) * math.sqrt(2.0 / (n + d)))


class LowFER(_OneToN):
    r"""The LowFER scorer :math:`g(s, r, o) = S^k(U^\top e_s \odot V^\top r)^\top e_o`.

    Parameters
    ----------
    n_entities, n_relations : int
        Numbers of entities and of (original) relations, each ``>= 1``.
    d_e, d_r : int
        Entity and relation embedding dimensions, ``>= 1``.
    k : int
        The factorisation rank (the pooling window), ``>= 1``.
    reciprocal : bool
        Keep a second embedding per relation for its inverse (indices
        ``n_relations .. 2 n_relations - 1``).
    input_dropout, hidden_dropout1, hidden_dropout2 : float
        Dropout rates in ``[0, 1)`` on :math:`e_s`, on the product before pooling and on
        :math:`z` (training mode only).
    batch_norm : bool
        Batch normalisation of :math:`e_s` and of :math:`z`.
    normalize : bool
        Power (signed square root) and :math:`\ell_2` normalisation of :math:`z`.
    seed : int, numpy.random.Generator, torch.Generator or None
        Source of the initial parameters: embeddings Xavier-normal, :math:`U` and
        :math:`V` uniform on :math:`[-1, 1]` (the authors' choices).

    Attributes
    ----------
    E : (n_entities, d_e) torch.nn.Parameter
    R : (n_relations or 2 n_relations, d_r) torch.nn.Parameter
    U : (d_e, k d_e) torch.nn.Parameter
    V : (d_r, k d_e) torch.nn.Parameter
    """

    def __init__(self, n_entities: int, n_relations: int, d_e: int = 32, d_r: int = 16,
                 k: int = 4, *, reciprocal: bool = True, input_dropout: float = 0.2,
                 hidden_dropout1: float = 0.2, hidden_dropout2: float = 0.3,
                 batch_norm: bool = True, normalize: bool = True, seed: Any = None) -> None:
        super().__init__()
        self.n_entities = check_positive_int(n_entities, "n_entities")
        self.n_relations = check_positive_int(n_relations, "n_relations")
        self.d_e = check_positive_int(d_e, "d_e")
        self.d_r = check_positive_int(d_r, "d_r")
        self.k = check_positive_int(k, "k")
        self.reciprocal = bool(reciprocal)
        self.batch_norm = bool(batch_norm)
        self.normalize = bool(normalize)
        rates = (input_dropout, hidden_dropout1, hidden_dropout2)
        names = ("input_dropout", "hidden_dropout1", "hidden_dropout2")
        for p, name in zip(rates, names, strict=True):
            _check_rate(p, name)
        g = torch_generator(seed)
        n_rel = self.n_relations * (2 if self.reciprocal else 1)
        self.E = _xavier(self.n_entities, self.d_e, g)
        self.R = _xavier(n_rel, self.d_r, g)
        self.U = nn.Parameter(torch.rand(self.d_e, self.k * self.d_e, generator=g) * 2 - 1)
        self.V = nn.Parameter(torch.rand(self.d_r, self.k * self.d_e, generator=g) * 2 - 1)
        self.drop0 = nn.Dropout(float(input_dropout))
        self.drop1 = nn.Dropout(float(hidden_dropout1))
        self.drop2 = nn.Dropout(float(hidden_dropout2))
        self.bn0 = nn.BatchNorm1d(self.d_e) if self.batch_norm else nn.Identity()
        self.bn1 = nn.BatchNorm1d(self.d_e) if self.batch_norm else nn.Identity()

    def pooled(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        r"""The fused vector :math:`z` (after the normalisations and dropouts in use).

        Parameters
        ----------
        s, r : (b,) int64 torch.Tensor
            Subjects and relation indices.

        Returns
        -------
        (b, d_e) torch.Tensor
        """
        es = self.drop0(self.bn0(self.E[s]))
        x = self.drop1((es @ self.U) * (self.R[r] @ self.V))
        z = x.view(-1, self.d_e, self.k).sum(dim=-1)  # S^k: windows of k consecutive entries
        if self.normalize:
            z = torch.sign(z) * torch.sqrt(z.abs() + 1e-12)
            z = nn.functional.normalize(z, p=2, dim=-1)
        return self.drop2(self.bn1(z))

    def logits(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Scores ``(b, n_entities)``: ``pooled(s, r) @ E.T``.

        Parameters
        ----------
        s, r : (b,) int64 torch.Tensor

        Returns
        -------
        (b, n_entities) torch.Tensor
        """
        return self.pooled(s, r) @ self.E.T

    def core(self) -> NDArray[np.float64]:
        r"""The equivalent TuckER core :math:`W_{abc} = \sum_{m<k} U_{a, ck+m} V_{b, ck+m}`.

        With ``batch_norm=False, normalize=False`` and in evaluation mode,
        :math:`g(s, r, o) = \sum_{abc} W_{abc} (e_s)_a r_b (e_o)_c`.

        Returns
        -------
        (d_e, d_r, d_e) float64 array
        """
        U = self.U.detach().double().numpy().reshape(self.d_e, self.d_e, self.k)
        V = self.V.detach().double().numpy().reshape(self.d_r, self.d_e, self.k)
        return np.einsum("acm,bcm->abc", U, V)


class DistMult(_OneToN):
    r"""DistMult (Yang et al., 2015): :math:`g(s, r, o) = \sum_c (e_s)_c\, r_c\, (e_o)_c`.

    Parameters
    ----------
    n_entities, n_relations : int
        Numbers of entities and of (original) relations, each ``>= 1``.
    d : int
        Embedding dimension (entities and relations), ``>= 1``.
    reciprocal : bool
        A second embedding per relation for its inverse (it does not make the score
        asymmetric: each relation's own score is symmetric in ``s`` and ``o``).
    input_dropout : float
        Dropout rate on :math:`e_s \odot r`, in ``[0, 1)``.
    seed : int, numpy.random.Generator, torch.Generator or None
        Source of the Xavier-normal initial embeddings.

    Attributes
    ----------
    E : (n_entities, d) torch.nn.Parameter
    R : (n_relations or 2 n_relations, d) torch.nn.Parameter
    """

    def __init__(self, n_entities: int, n_relations: int, d: int = 32, *,
                 reciprocal: bool = True, input_dropout: float = 0.2,
                 seed: Any = None) -> None:
        super().__init__()
        self.n_entities = check_positive_int(n_entities, "n_entities")
        self.n_relations = check_positive_int(n_relations, "n_relations")
        self.d = check_positive_int(d, "d")
        self.reciprocal = bool(reciprocal)
        _check_rate(input_dropout, "input_dropout")
        g = torch_generator(seed)
        self.E = _xavier(self.n_entities, self.d, g)
        self.R = _xavier(self.n_relations * (2 if self.reciprocal else 1), self.d, g)
        self.drop = nn.Dropout(float(input_dropout))

    def logits(self, s: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        """Scores ``(b, n_entities)``: ``(E[s] ⊙ R[r]) @ E.T``.

        Parameters
        ----------
        s, r : (b,) int64 torch.Tensor

        Returns
        -------
        (b, n_entities) torch.Tensor
        """
        return self.drop(self.E[s] * self.R[r]) @ self.E.T


def _check_rate(p: object, name: str) -> float:
    p = check_positive(p, name, allow_zero=True)
    if p >= 1:
        raise ValueError(f"{name} must lie in [0, 1); got {p}")
    return p


def lowfer_factors_from_core(W: ArrayLike, k: int | None = None
                             ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""LowFER factors :math:`(U, V)` whose core (:meth:`LowFER.core`) best matches ``W``.

    Slice :math:`c` of the TuckER core, :math:`W_{:, :, c} = \sum_m \sigma_m a_m b_m^\top`
    (its SVD), gives :math:`U_{:, ck+m} = \sqrt{\sigma_m} a_m` and
    :math:`V_{:, ck+m} = \sqrt{\sigma_m} b_m` for the ``k`` leading terms (zero columns
    past the slice's rank): exact for ``k >= min(d_e, d_r)``, else each slice's best
    rank-``k`` approximation in the Frobenius norm (Eckart–Young).

    Parameters
    ----------
    W : (d_e, d_r, d_e) array
        A TuckER core (subject, relation, object modes).
    k : int, optional
        The LowFER rank; default ``min(d_e, d_r)``.

    Returns
    -------
    U : (d_e, k d_e) float64 array
    V : (d_r, k d_e) float64 array

    Raises
    ------
    ValueError
        If ``W`` is not 3-D with equal first and third modes, or not finite.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 3 or W.shape[0] != W.shape[2]:
        raise ValueError(f"W must have shape (d_e, d_r, d_e); got {W.shape}")
    if not np.all(np.isfinite(W)):
        raise ValueError("W contains NaN or Inf")
    d_e, d_r, _ = W.shape
    k = min(d_e, d_r) if k is None else check_positive_int(k, "k")
    U = np.zeros((d_e, d_e, k))
    V = np.zeros((d_r, d_e, k))
    A, sig, Bt = np.linalg.svd(np.moveaxis(W, 2, 0), full_matrices=False)  # (d_e, ., .)
    t = min(k, sig.shape[1])
    root = np.sqrt(sig[:, :t])
    U[:, :, :t] = np.moveaxis(A[:, :, :t] * root[:, None, :], 0, 1)
    V[:, :, :t] = np.moveaxis(np.swapaxes(Bt, 1, 2)[:, :, :t] * root[:, None, :], 0, 1)
    return U.reshape(d_e, d_e * k), V.reshape(d_r, d_e * k)


# --------------------------------------------------------------------------- data


class KG(NamedTuple):
    """A synthetic knowledge graph with a planted structure.

    Attributes
    ----------
    train, valid, test : (t, 3) int64 arrays
        Triples ``(subject, relation, object)``.
    n_entities, n_relations : int
    clusters : (n_entities,) int64 array
        The planted cluster of each entity.
    maps : (n_relations, n_clusters) int64 array
        Relation ``r`` links cluster ``c`` to cluster ``maps[r, c]``.
    """

    train: NDArray[np.int64]
    valid: NDArray[np.int64]
    test: NDArray[np.int64]
    n_entities: int
    n_relations: int
    clusters: NDArray[np.int64]
    maps: NDArray[np.int64]

    def all_triples(self) -> NDArray[np.int64]:
        """Train, valid and test stacked (the filter set of the filtered protocol)."""
        return np.concatenate([self.train, self.valid, self.test])


def synthetic_kg(n_entities: int = 150, n_relations: int = 4, *, n_clusters: int = 15,
                 density: float = 0.5, valid_fraction: float = 0.1,
                 test_fraction: float = 0.1, seed: SeedLike = None) -> KG:
    r"""Triples from clusters linked by asymmetric relations, split train/valid/test.

    Entity ``e`` belongs to cluster ``e mod n_clusters``. Each relation ``r`` is a random
    permutation :math:`\pi_r` of the clusters with no fixed point and no 2-cycle, and each
    triple :math:`(s, r, o)` with :math:`o` in cluster :math:`\pi_r(\text{cluster}(s))` is
    present independently with probability ``density``. Since
    :math:`\pi_r(\pi_r(c)) \ne c`, no relation has both :math:`(s, r, o)` and
    :math:`(o, r, s)`: every relation is antisymmetric. The triples are split at random;
    a valid or test triple whose subject or object never occurs in the training split is
    moved to it.

    Parameters
    ----------
    n_entities : int
        ``>= n_clusters``.
    n_relations : int
        ``>= 1``.
    n_clusters : int
        ``>= 3``.
    density : float
        In ``(0, 1]``.
    valid_fraction, test_fraction : float
        Fractions of the triples held out, each in ``(0, 1)``, summing below 1.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    KG

    Raises
    ------
    TypeError
        If a count is not an integer.
    ValueError
        If an argument is out of range.
    """
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if n_clusters < 3:
        raise ValueError(f"n_clusters must be at least 3 (asymmetric maps); got {n_clusters}")
    n_entities = check_positive_int(n_entities, "n_entities")
    if n_entities < n_clusters:
        raise ValueError(f"n_entities must be at least n_clusters={n_clusters}; got "
                         f"{n_entities}")
    n_relations = check_positive_int(n_relations, "n_relations")
    density = check_fraction(density, "density")
    fv = check_fraction(valid_fraction, "valid_fraction")
    ft = check_fraction(test_fraction, "test_fraction")
    if fv + ft >= 1:
        raise ValueError(f"valid_fraction + test_fraction must be below 1; got {fv + ft}")
    rng = as_generator(seed)
    clusters = np.arange(n_entities, dtype=np.int64) % n_clusters
    maps = np.empty((n_relations, n_clusters), dtype=np.int64)
    c = np.arange(n_clusters)
    for r in range(n_relations):
        while True:
            p = rng.permutation(n_clusters)
            if np.all(p != c) and np.all(p[p] != c):
                break
        maps[r] = p
    target = maps[:, clusters]  # (n_rel, n_e): the cluster of the objects of (s, r)
    S, R, O = np.meshgrid(np.arange(n_entities), np.arange(n_relations),
                          np.arange(n_entities), indexing="ij")
    linked = (clusters[O] == target[R, S]) & (rng.random(S.shape) < density)
    triples = np.stack([S[linked], R[linked], O[linked]], axis=1).astype(np.int64)
    split = rng.random(len(triples))
    tr = triples[split >= fv + ft]
    va = triples[split < fv]
    te = triples[(split >= fv) & (split < fv + ft)]
    known = np.zeros(n_entities, dtype=bool)
    known[tr[:, 0]] = known[tr[:, 2]] = True
    keep_v = known[va[:, 0]] & known[va[:, 2]]
    keep_t = known[te[:, 0]] & known[te[:, 2]]
    tr = np.concatenate([tr, va[~keep_v], te[~keep_t]])
    return KG(tr, va[keep_v], te[keep_t], n_entities, n_relations, clusters, maps)


# --------------------------------------------------------------------------- training


def _check_triples(triples: ArrayLike, name: str, n_entities: int,
                   n_relations: int) -> NDArray[np.int64]:
    t = np.asarray(triples)
    if t.ndim != 2 or t.shape[1] != 3 or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (t, 3) array of (s, r, o); got shape "
                         f"{t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"{name} must hold integers; got dtype {t.dtype}")
    t = t.astype(np.int64)
    if (t[:, [0, 2]].min() < 0 or t[:, [0, 2]].max() >= n_entities or t[:, 1].min() < 0
            or t[:, 1].max() >= n_relations):
        raise ValueError(f"{name}: an entity lies outside [0, {n_entities}) or a relation "
                         f"outside [0, {n_relations})")
    return t


def _train_1n(model: _OneToN, triples: NDArray[np.int64], *, lr: float, n_epochs: int,
              batch_size: int, label_smoothing: float, lr_decay: float, weight_decay: float,
              rng: np.random.Generator) -> list[float]:
    """1-N training with smoothed BCE; returns the mean loss of each epoch."""
    n_e, n_r = model.n_entities, model.n_relations
    if model.reciprocal:
        triples = np.concatenate([triples, np.stack([triples[:, 2], triples[:, 1] + n_r,
                                                     triples[:, 0]], axis=1)])
    answers: dict[tuple[int, int], list[int]] = defaultdict(list)
    for s, r, o in triples.tolist():
        answers[(s, r)].append(o)
    pairs = np.array(list(answers), dtype=np.int64)
    if len(pairs) < 2 and any(isinstance(mod, nn.BatchNorm1d) for mod in model.modules()):
        raise ValueError("batch normalisation needs at least two distinct training pairs "
                         "(s, r); pass batch_norm=False")
    targets = torch.zeros(len(pairs), n_e)
    for row, key in enumerate(answers):
        targets[row, answers[key]] = 1.0
    if label_smoothing:
        targets = (1.0 - label_smoothing) * targets + 1.0 / n_e
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, lr_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    pairs_t = torch.from_numpy(pairs)
    errors = []
    with torch.random.fork_rng(devices=[]):  # dropout draws; global state restored after
        torch.manual_seed(int(rng.integers(2**62)))
        model.train()
        for _ in range(n_epochs):
            order = torch.from_numpy(rng.permutation(len(pairs)))
            total, count = 0.0, 0
            for idx in torch.split(order, batch_size):
                if len(idx) < 2 and len(order) >= 2:
                    continue  # batch norm needs two rows
                opt.zero_grad()
                out = model.logits(pairs_t[idx, 0], pairs_t[idx, 1])
                loss = loss_fn(out, targets[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                count += len(idx)
            sched.step()
            errors.append(total / max(count, 1))
    model.eval()
    return errors


def _fit_args(lr: float, n_epochs: int, batch_size: int, label_smoothing: float,
              lr_decay: float, weight_decay: float) -> dict[str, Any]:
    ls = check_positive(label_smoothing, "label_smoothing", allow_zero=True)
    if ls >= 1:
        raise ValueError(f"label_smoothing must lie in [0, 1); got {ls}")
    return dict(lr=check_positive(lr, "lr"), n_epochs=check_positive_int(n_epochs, "n_epochs"),
                batch_size=check_positive_int(batch_size, "batch_size"), label_smoothing=ls,
                lr_decay=check_fraction(lr_decay, "lr_decay"),
                weight_decay=check_positive(weight_decay, "weight_decay", allow_zero=True))


@overload
def fit_lowfer(triples: ArrayLike, n_entities: int, n_relations: int, *, d_e: int = ...,
               d_r: int = ..., k: int = ..., lr: float = ..., n_epochs: int = ...,
               batch_size: int = ..., label_smoothing: float = ..., lr_decay: float = ...,
               weight_decay: float = ..., input_dropout: float = ...,
               hidden_dropout1: float = ..., hidden_dropout2: float = ...,
               batch_norm: bool = ..., normalize: bool = ..., reciprocal: bool = ...,
               seed: SeedLike = ..., return_info: Literal[False] = ...) -> LowFER: ...
@overload
def fit_lowfer(triples: ArrayLike, n_entities: int, n_relations: int, *, d_e: int = ...,
               d_r: int = ..., k: int = ..., lr: float = ..., n_epochs: int = ...,
               batch_size: int = ..., label_smoothing: float = ..., lr_decay: float = ...,
               weight_decay: float = ..., input_dropout: float = ...,
               hidden_dropout1: float = ..., hidden_dropout2: float = ...,
               batch_norm: bool = ..., normalize: bool = ..., reciprocal: bool = ...,
               seed: SeedLike = ..., return_info: Literal[True]) -> tuple[LowFER, Info]: ...
@overload
def fit_lowfer(triples: ArrayLike, n_entities: int, n_relations: int, *, d_e: int = ...,
               d_r: int = ..., k: int = ..., lr: float = ..., n_epochs: int = ...,
               batch_size: int = ..., label_smoothing: float = ..., lr_decay: float = ...,
               weight_decay: float = ..., input_dropout: float = ...,
               hidden_dropout1: float = ..., hidden_dropout2: float = ...,
               batch_norm: bool = ..., normalize: bool = ..., reciprocal: bool = ...,
               seed: SeedLike = ..., return_info: bool) -> LowFER | tuple[LowFER, Info]: ...
def fit_lowfer(triples: ArrayLike, n_entities: int, n_relations: int, *, d_e: int = 32,
               d_r: int = 16, k: int = 4, lr: float = 1e-2, n_epochs: int = 100,
               batch_size: int = 128, label_smoothing: float = 0.1, lr_decay: float = 0.995,
               weight_decay: float = 0.0, input_dropout: float = 0.1,
               hidden_dropout1: float = 0.1, hidden_dropout2: float = 0.1,
               batch_norm: bool = True, normalize: bool = True, reciprocal: bool = True,
               seed: SeedLike = None,
               return_info: bool = False) -> LowFER | tuple[LowFER, Info]:
    """Train a :class:`LowFER` model by 1-N scoring (Amin et al., 2020).

    Every distinct training pair ``(s, r)`` (and, with ``reciprocal``, ``(o, r⁻¹)``) is one
    row; an epoch visits the rows in a random order in batches of ``batch_size`` (a final
    batch of one row is skipped, batch normalisation needs two), each an Adam step on the
    label-smoothed binary cross-entropy of the 1-N logits against the known answers. The
    learning rate is multiplied by ``lr_decay`` after each epoch. Dropout draws use torch's
    global generator inside ``torch.random.fork_rng``, seeded from ``seed``: the caller's
    global random state is left as it was.

    The defaults suit the small graphs of this chapter; the paper's runs on the WordNet
    and Freebase benchmarks use ``d_e = 200`` or 300, ``k`` from 10 to 100, ``lr`` from
    ``5e-4`` to ``5e-3`` and dropouts from 0.1 to 0.5 over 500 epochs.

    Parameters
    ----------
    triples : (t, 3) int array
        Training triples ``(s, r, o)``.
    n_entities, n_relations : int
        Numbers of entities and relations.
    d_e, d_r, k : int
        Embedding dimensions and rank (see :class:`LowFER`).
    lr : float
        Adam's learning rate, ``> 0``.
    n_epochs : int
        Passes over the rows, ``>= 1``.
    batch_size : int
        Rows per step, ``>= 1``.
    label_smoothing : float
        :math:`\\epsilon` in ``[0, 1)``.
    lr_decay : float
        Per-epoch learning-rate factor in ``(0, 1]``.
    weight_decay : float
        Adam's L2 penalty, ``>= 0``.
    input_dropout, hidden_dropout1, hidden_dropout2 : float
        Dropout rates (see :class:`LowFER`).
    batch_norm, normalize, reciprocal : bool
        See :class:`LowFER`.
    seed : int, numpy.random.Generator or None
        Source of the initial parameters, the batch orders and the dropout masks.
    return_info : bool
        Also return an :class:`refimpl.results.Info`; ``errors`` are each epoch's mean
        training loss, ``converged`` is true (a fixed schedule).

    Returns
    -------
    LowFER
        In evaluation mode.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If a count is not an integer.
    ValueError
        If ``triples`` is malformed, an argument is out of range, or ``batch_norm`` is on
        with fewer than two distinct training pairs.
    """
    rng = as_generator(seed)
    n_entities = check_positive_int(n_entities, "n_entities")
    n_relations = check_positive_int(n_relations, "n_relations")
    t = _check_triples(triples, "triples", n_entities, n_relations)
    args = _fit_args(lr, n_epochs, batch_size, label_smoothing, lr_decay, weight_decay)
    model = LowFER(n_entities, n_relations, d_e, d_r, k, reciprocal=reciprocal,
                   input_dropout=input_dropout, hidden_dropout1=hidden_dropout1,
                   hidden_dropout2=hidden_dropout2, batch_norm=batch_norm, normalize=normalize,
                   seed=int(rng.integers(2**62)))
    errors = _train_1n(model, t, rng=rng, **args)
    return (model, Info(len(errors), True, tuple(errors))) if return_info else model


def fit_distmult(triples: ArrayLike, n_entities: int, n_relations: int, *, d: int = 32,
                 lr: float = 1e-2, n_epochs: int = 100, batch_size: int = 128,
                 label_smoothing: float = 0.1, lr_decay: float = 0.995,
                 weight_decay: float = 0.0, input_dropout: float = 0.2,
                 reciprocal: bool = True, seed: SeedLike = None) -> DistMult:
    """Train a :class:`DistMult` baseline with the same 1-N procedure as :func:`fit_lowfer`.

    Parameters
    ----------
    triples : (t, 3) int array
        Training triples ``(s, r, o)``.
    n_entities, n_relations : int
        Numbers of entities and relations.
    d : int
        Embedding dimension.
    lr, n_epochs, batch_size, label_smoothing, lr_decay, weight_decay
        As for :func:`fit_lowfer`.
    input_dropout : float
        See :class:`DistMult`.
    reciprocal : bool
        See :class:`DistMult`.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    DistMult
        In evaluation mode.

    Raises
    ------
    TypeError, ValueError
        As :func:`fit_lowfer`.
    """
    rng = as_generator(seed)
    n_entities = check_positive_int(n_entities, "n_entities")
    n_relations = check_positive_int(n_relations, "n_relations")
    t = _check_triples(triples, "triples", n_entities, n_relations)
    args = _fit_args(lr, n_epochs, batch_size, label_smoothing, lr_decay, weight_decay)
    model = DistMult(n_entities, n_relations, d, reciprocal=reciprocal,
                     input_dropout=input_dropout, seed=int(rng.integers(2**62)))
    _train_1n(model, t, rng=rng, **args)
    return model


# --------------------------------------------------------------------------- evaluation


def _filtered_ranks(scores: NDArray[np.float64], targets: NDArray[np.int64],
                    known: list[list[int]]) -> NDArray[np.float64]:
    """Rank of each target with the other known answers removed; ties count half."""
    scores = scores.copy()
    rows = np.arange(len(targets))
    true = scores[rows, targets]
    for j, others in enumerate(known):
        scores[j, others] = -np.inf
    scores[rows, targets] = true
    greater = (scores > true[:, None]).sum(axis=1)
    ties = (scores == true[:, None]).sum(axis=1) - 1
    return 1.0 + greater + ties / 2.0


def link_prediction_metrics(model: LinkScorer, test_triples: ArrayLike,
                            all_triples: ArrayLike, *, sides: str = "both",
                            hits: tuple[int, ...] = (1, 3, 10),
                            batch_size: int = 512) -> dict[str, float]:
    """Filtered MRR, MR and hits@k of ``model`` on ``test_triples``.

    For a test triple ``(s, r, o)`` the object query ranks ``o`` among all entities by
    ``model.score_objects``, after removing every other ``o'`` with ``(s, r, o')`` in
    ``all_triples`` (the filtered setting); the subject query does the same for ``s``
    with ``model.score_subjects``. Tied scores count half (the expected rank under random
    tie-breaking, so a constant scorer gets no credit). The metrics average over all
    queries.

    Parameters
    ----------
    model : LinkScorer
        Anything with ``score_objects(s, r)`` and ``score_subjects(o, r)`` returning
        ``(b, n_entities)`` scores (:class:`LowFER`, :class:`DistMult`).
    test_triples : (t, 3) int array
        The triples to rank.
    all_triples : (a, 3) int array
        Every known true triple (train, valid and test), the filter.
    sides : {"both", "object", "subject"}
        Which queries.
    hits : tuple of int
        The cut-offs ``k`` of hits@k.
    batch_size : int
        Queries scored at once.

    Returns
    -------
    dict
        ``"mrr"``, ``"mr"`` and ``"hits@k"`` for each ``k``, as floats.

    Raises
    ------
    ValueError
        If the triples are malformed or ``sides`` is unknown.
    """
    sides = check_choice(sides, "sides", ("both", "object", "subject"))
    batch_size = check_positive_int(batch_size, "batch_size")
    test = np.asarray(test_triples)
    allt = np.asarray(all_triples)
    big = np.iinfo(np.int64).max
    test = _check_triples(test, "test_triples", big, big)
    allt = _check_triples(allt, "all_triples", big, big)
    objects: dict[tuple[int, int], list[int]] = defaultdict(list)
    subjects: dict[tuple[int, int], list[int]] = defaultdict(list)
    for s, r, o in allt.tolist():
        objects[(s, r)].append(o)
        subjects[(o, r)].append(s)
    ranks = []
    for start in range(0, len(test), batch_size):
        b = test[start:start + batch_size]
        if sides in ("both", "object"):
            sc = np.asarray(model.score_objects(b[:, 0], b[:, 1]), dtype=np.float64)
            ranks.append(_filtered_ranks(sc, b[:, 2], [objects[(s, r)] for s, r in
                                                       b[:, :2].tolist()]))
        if sides in ("both", "subject"):
            sc = np.asarray(model.score_subjects(b[:, 2], b[:, 1]), dtype=np.float64)
            ranks.append(_filtered_ranks(sc, b[:, 0], [subjects[(o, r)] for r, o in
                                                       b[:, 1:].tolist()]))
    rk = np.concatenate(ranks)
    out = {"mrr": float(np.mean(1.0 / rk)), "mr": float(np.mean(rk))}
    for h in hits:
        out[f"hits@{check_positive_int(h, 'hits')}"] = float(np.mean(rk <= h))
    return out
