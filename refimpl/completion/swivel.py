r"""Swivel: word embeddings from a co-occurrence matrix, unobserved cells included.

Swivel (Shazeer, Doherty, Evans & Waterson, 2016) factorises the pointwise mutual
information of a co-occurrence matrix :math:`x_{ij}` (row feature :math:`i`, column feature
:math:`j`, marginals :math:`x_{i*}`, :math:`x_{*j}`, total :math:`|D|`),

.. math:: \mathrm{pmi}(i, j) = \log x_{ij} + \log |D| - \log x_{i*} - \log x_{*j},

as :math:`w_i^\top \tilde w_j` with row vectors :math:`w_i` and column vectors
:math:`\tilde w_j`, and — unlike GloVe, which skips the zeros — it trains on *every* cell:

- an observed cell (:math:`x_{ij} > 0`) costs a squared error weighted by a confidence that
  grows with the count,

  .. math:: \mathcal L_0 = \tfrac12 f(x_{ij}) \big(w_i^\top \tilde w_j - \mathrm{pmi}(i,j)
            \big)^2, \qquad f(x) = 0.1 + 0.25\, x^{1/2};

- an unobserved cell (:math:`x_{ij} = 0`) costs a soft hinge against the PMI the pair would
  have had with a count of one,

  .. math:: \mathcal L_1 = \log\big(1 + \exp(w_i^\top \tilde w_j - \mathrm{pmi}^*(i,j))\big),
            \qquad \mathrm{pmi}^*(i,j) = \log |D| - \log x_{i*} - \log x_{*j}.

  This is how Swivel "notices what's missing": two frequent features that never co-occur
  have a very negative :math:`\mathrm{pmi}^*`, and the hinge pushes their dot product below
  it, while for two rare features :math:`\mathrm{pmi}^*` is large and the hinge barely acts
  (their co-occurring by chance was unlikely anyway).

The gradients, with :math:`d = w_i^\top \tilde w_j`, are :math:`f(x)(d - \mathrm{pmi})` and
:math:`\sigma(d - \mathrm{pmi}^*)` times :math:`\tilde w_j` (for :math:`w_i`) or :math:`w_i`
(for :math:`\tilde w_j`). Training follows the paper's sharding: rows and columns are sorted
by decreasing marginal and dealt into shards of ``shard_size`` by taking every
:math:`k`-th one (so each shard mixes frequent and rare features); one step processes one
row shard × column shard block *densely* — the block of predictions is one matrix product —
and applies Adagrad to the block's row and column vectors. An epoch visits every block once,
in random order. :attr:`Swivel.embeddings` is :math:`w_i + \tilde w_i` (for a square,
symmetric matrix), the combination GloVe uses.

Baseline and evaluation helpers: :func:`pmi_matrix` (with Levy, Goldberg & Dagan's (2015)
context-distribution smoothing), :func:`svd_embeddings` (truncated SVD of the positive PMI,
:math:`U_d\Sigma_d^{1/2}`), :func:`text_vocabulary` and :func:`cooccurrence` to build the
matrix from text, :func:`nearest` and :func:`similarity_score`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import ArrayLike, NDArray, SeedLike, SparseMatrix
from refimpl._validation import (
    check_array,
    check_choice,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.results import Info
from refimpl.seeding import as_generator

__all__ = ["ADAGRAD_INIT", "CONFIDENCE", "Swivel", "cooccurrence", "nearest", "pmi_matrix",
           "similarity_score", "svd_embeddings", "swivel", "text_vocabulary"]

#: Swivel's confidence :math:`f(x) = b + s\,x^{e}` of an observed count, as ``(b, s, e)``:
#: the paper's :math:`0.1 + 0.25\sqrt{x}`.
CONFIDENCE = (0.1, 0.25, 0.5)

#: Initial Adagrad accumulator (keeps the first steps finite).
ADAGRAD_INIT = 0.1

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_WEIGHTINGS = ("harmonic", "uniform")


class Swivel(NamedTuple):
    r"""Swivel's row and column embeddings.

    Attributes
    ----------
    W : (n_rows, dim) float64 array
        Row vectors :math:`w_i`.
    C_ctx : (n_cols, dim) float64 array
        Column (context) vectors :math:`\tilde w_j`.
    """

    W: NDArray[np.float64]
    C_ctx: NDArray[np.float64]

    @property
    def embeddings(self) -> NDArray[np.float64]:
        r"""One vector per feature, :math:`w_i + \tilde w_i` (needs a square matrix).

        Returns
        -------
        (n, dim) float64 array

        Raises
        ------
        ValueError
            If the numbers of rows and columns differ.
        """
        if self.W.shape != self.C_ctx.shape:
            raise ValueError("embeddings needs as many rows as columns; got "
                             f"{self.W.shape[0]} and {self.C_ctx.shape[0]}")
        return self.W + self.C_ctx

    def dots(self) -> NDArray[np.float64]:
        r"""All predicted PMI values :math:`w_i^\top \tilde w_j`.

        Returns
        -------
        (n_rows, n_cols) float64 array
        """
        return self.W @ self.C_ctx.T


# --------------------------------------------------------------------------- text


def text_vocabulary(text: str, *, min_count: int = 1,
                    max_vocab: int | None = None) -> tuple[list[int], list[str]]:
    """Tokenize text into lowercase words and number them by frequency.

    Words are maximal runs of ASCII letters, with one inner apostrophe allowed
    (``"don't"``), after lowercasing. The vocabulary keeps the words seen at least
    ``min_count`` times, at most ``max_vocab`` of them, most frequent first (ties
    alphabetically). Words outside it are dropped from the id sequence, so that a
    co-occurrence window counts distance in kept words (as word2vec does with its
    ``min_count``).

    Parameters
    ----------
    text : str
        The corpus.
    min_count : int
        Least count of a kept word.
    max_vocab : int, optional
        Largest vocabulary.

    Returns
    -------
    ids : list of int
        The kept words of the text in order, as indices into ``vocab``.
    vocab : list of str
        The words, id ``i`` is ``vocab[i]``.

    Raises
    ------
    TypeError
        If ``text`` is not a string.
    ValueError
        If no word is kept.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    min_count = check_positive_int(min_count, "min_count")
    if max_vocab is not None:
        max_vocab = check_positive_int(max_vocab, "max_vocab")
    words = _WORD.findall(text.lower())
    counts = Counter(words)
    vocab = sorted((w for w, c in counts.items() if c >= min_count),
                   key=lambda w: (-counts[w], w))[:max_vocab]
    if not vocab:
        raise ValueError(f"no word of the text occurs min_count={min_count} times")
    index = {w: i for i, w in enumerate(vocab)}
    return [index[w] for w in words if w in index], vocab


def cooccurrence(tokens: ArrayLike, vocab_size: int | None = None, *, window: int = 5,
                 weighting: str = "harmonic") -> Any:
    r"""Symmetric window co-occurrence counts of a token sequence.

    Every token at position :math:`t` and every token at :math:`t \pm d`,
    :math:`1 \le d \le` ``window``, form a pair that adds :math:`1/d` (``"harmonic"``, the
    weighting GloVe uses and Swivel's preprocessing offers) or 1 (``"uniform"``) to
    :math:`x_{ij}`. The matrix is symmetric (each pair is counted from both of its words).

    Parameters
    ----------
    tokens : (N,) int array-like
        Token ids in ``[0, vocab_size)``.
    vocab_size : int, optional
        Matrix size (default ``max(tokens) + 1``).
    window : int
        Largest distance.
    weighting : {"harmonic", "uniform"}
        Weight of a pair at distance :math:`d`.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(vocab_size, vocab_size)`` float64 counts.

    Raises
    ------
    ValueError
        If the tokens are empty, not integers or out of range.
    """
    import scipy.sparse

    t = np.asarray(tokens)
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"tokens must be a non-empty 1-D sequence; got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"tokens must be integers; got dtype {t.dtype}")
    t = t.astype(np.int64)
    V = int(t.max()) + 1 if vocab_size is None else check_positive_int(vocab_size,
                                                                         "vocab_size")
    if t.min() < 0 or t.max() >= V:
        raise ValueError(f"tokens must lie in [0, {V}); got range [{t.min()}, {t.max()}]")
    window = check_positive_int(window, "window")
    weighting = check_choice(weighting, "weighting", _WEIGHTINGS)
    rows, cols, vals = [], [], []
    for d in range(1, min(window, t.size - 1) + 1):
        rows.append(t[:-d])
        cols.append(t[d:])
        vals.append(np.full(t.size - d, 1.0 / d if weighting == "harmonic" else 1.0))
    if not rows:
        return scipy.sparse.csr_matrix((V, V), dtype=np.float64)
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    P = scipy.sparse.csr_matrix((v, (r, c)), shape=(V, V))
    out = (P + P.T).tocsr()
    out.sum_duplicates()
    return out


# --------------------------------------------------------------------------- PMI, SVD


def _counts(C: Any, name: str = "C") -> Any:
    import scipy.sparse

    if not scipy.sparse.issparse(C):
        C = np.asarray(check_array(C, name, allow_torch=False), dtype=np.float64)
    X = scipy.sparse.csr_matrix(C, dtype=np.float64)
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must not be empty; got shape {X.shape}")
    if not np.all(np.isfinite(X.data)):
        raise ValueError(f"{name} contains NaN or Inf")
    if X.data.size and X.data.min() < 0:
        raise ValueError(f"{name} must be nonnegative counts; its smallest entry is "
                         f"{X.data.min()!r}")
    X.eliminate_zeros()
    if X.nnz == 0:
        raise ValueError(f"{name} has no nonzero count")
    return X


def _pmi_sparse(X: Any, alpha: float, positive: bool) -> Any:
    """PMI at the nonzero cells of a CSR count matrix (same pattern)."""
    total = X.data.sum()
    rs = np.asarray(X.sum(axis=1)).ravel()
    cs = np.asarray(X.sum(axis=0)).ravel()
    cs_a = cs**alpha
    log_pc = np.log(np.where(cs_a > 0, cs_a, 1.0) / cs_a.sum())
    P = X.copy()
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    P.data = np.log(X.data / total) - np.log(rs[rows] / total) - log_pc[X.indices]
    if positive:
        P.data = np.maximum(P.data, 0.0)
        P.eliminate_zeros()
    return P


def pmi_matrix(C: SparseMatrix | ArrayLike, *, alpha: float = 1.0,
               positive: bool = False) -> NDArray[np.float64]:
    r"""The dense (positive) PMI matrix of co-occurrence counts.

    :math:`\mathrm{pmi}(i,j) = \log\frac{x_{ij}/|D|}{(x_{i*}/|D|)\, P_\alpha(j)}` with the
    smoothed context distribution :math:`P_\alpha(j) = x_{*j}^\alpha / \sum_k x_{*k}^\alpha`
    (Levy, Goldberg & Dagan, 2015; ``alpha=1`` is plain PMI).

    Parameters
    ----------
    C : (n, m) SciPy sparse matrix or array
        Nonnegative counts.
    alpha : float
        Context-distribution smoothing exponent, ``> 0`` (0.75 is their suggestion).
    positive : bool
        Clip negative values to 0 (PPMI).

    Returns
    -------
    (n, m) float64 array
        PMI at the nonzero cells; the cells with zero count (PMI :math:`-\infty`) are 0.

    Raises
    ------
    ValueError
        If ``C`` is empty, negative, non-finite or all zero.
    """
    alpha = check_positive(alpha, "alpha")
    return np.asarray(_pmi_sparse(_counts(C), alpha, bool(positive)).toarray())


def svd_embeddings(C: SparseMatrix | ArrayLike, dim: int, *, alpha: float = 1.0,
                   power: float = 0.5) -> NDArray[np.float64]:
    r"""The classic count-based baseline: truncated SVD of the positive PMI matrix.

    Returns :math:`U_d \Sigma_d^{\,p}` for the ``dim`` leading singular triplets of the PPMI
    matrix (:func:`pmi_matrix` with ``positive=True``); :math:`p = 1/2` is the symmetric
    split Levy, Goldberg & Dagan (2015) recommend. Up to 2000 rows the SVD is dense; above,
    ARPACK (``scipy.sparse.linalg.svds``) from a fixed start vector (deterministic).

    Parameters
    ----------
    C : (n, m) SciPy sparse matrix or array
        Nonnegative counts.
    dim : int
        Embedding size, ``1 <= dim < min(n, m)``.
    alpha : float
        Context-distribution smoothing of the PMI.
    power : float
        Exponent :math:`p` of the singular values, ``>= 0``.

    Returns
    -------
    (n, dim) float64 array
        One row per row feature, leading direction first (each column's sign fixed so that
        its largest-magnitude entry is positive).

    Raises
    ------
    ValueError
        If ``C`` is invalid or ``dim`` too large.
    """
    X = _counts(C)
    dim = check_rank(dim, "dim", min(X.shape) - 1, what="min(n, m) - 1")
    alpha = check_positive(alpha, "alpha")
    power = check_positive(power, "power", allow_zero=True)
    P = _pmi_sparse(X, alpha, True)
    if max(P.shape) <= 2000:
        U, s, _ = np.linalg.svd(P.toarray(), full_matrices=False)
        U, s = U[:, :dim], s[:dim]
    else:
        from scipy.sparse.linalg import svds

        v0 = np.ones(min(P.shape)) / np.sqrt(min(P.shape))
        U, s, _ = svds(P, k=dim, v0=v0)
        order = np.argsort(s)[::-1]
        U, s = U[:, order], s[order]
    big = np.argmax(np.abs(U), axis=0)
    U = U * np.sign(U[big, np.arange(U.shape[1])])
    return np.asarray(U * s**power, dtype=np.float64)


# --------------------------------------------------------------------------- Swivel


def _block_loss_grad(Wb: NDArray[np.float64], Cb: NDArray[np.float64],
                     X: NDArray[np.float64], log_r: NDArray[np.float64],
                     log_c: NDArray[np.float64], log_total: float,
                     conf: tuple[float, float, float], unobserved: bool
                     ) -> tuple[float, NDArray[np.float64], NDArray[np.float64]]:
    """Swivel's loss over a dense block and its gradients with respect to ``Wb`` and ``Cb``.

    ``X`` holds the block's counts, ``log_r`` / ``log_c`` the logs of its rows' and columns'
    marginals. Returns ``(loss, dL/dWb, dL/dCb)`` (sums over the block's cells).
    """
    from scipy.special import expit

    D = Wb @ Cb.T
    pmi_star = log_total - log_r[:, None] - log_c[None, :]
    seen = X > 0
    G = np.zeros_like(D)
    base, scale, expo = conf
    f = base + scale * X[seen] ** expo
    err = D[seen] - (np.log(X[seen]) + pmi_star[seen])
    loss = 0.5 * float(np.sum(f * err * err))
    G[seen] = f * err
    if unobserved:
        z = D[~seen] - pmi_star[~seen]
        loss += float(np.sum(np.logaddexp(0.0, z)))
        G[~seen] = expit(z)
    return loss, G @ Cb, G.T @ Wb


def _shards(marginals: NDArray[np.float64], size: int) -> list[NDArray[np.int64]]:
    """Indices sorted by decreasing marginal, dealt into ``ceil(n / size)`` strided shards."""
    order = np.argsort(-marginals, kind="stable")
    k = -(-order.size // size)
    return [np.sort(order[s::k]) for s in range(k)]


@overload
def swivel(C: SparseMatrix | ArrayLike, dim: int, *, n_epochs: int = ..., lr: float = ...,
           shard_size: int = ..., unobserved_loss: bool = ...,
           confidence: tuple[float, float, float] = ..., seed: SeedLike = ...,
           return_info: Literal[False] = ...) -> Swivel: ...
@overload
def swivel(C: SparseMatrix | ArrayLike, dim: int, *, n_epochs: int = ..., lr: float = ...,
           shard_size: int = ..., unobserved_loss: bool = ...,
           confidence: tuple[float, float, float] = ..., seed: SeedLike = ...,
           return_info: Literal[True]) -> tuple[Swivel, Info]: ...
@overload
def swivel(C: SparseMatrix | ArrayLike, dim: int, *, n_epochs: int = ..., lr: float = ...,
           shard_size: int = ..., unobserved_loss: bool = ...,
           confidence: tuple[float, float, float] = ..., seed: SeedLike = ...,
           return_info: bool) -> Swivel | tuple[Swivel, Info]: ...
def swivel(C: SparseMatrix | ArrayLike, dim: int, *, n_epochs: int = 50, lr: float = 0.1,
           shard_size: int = 256, unobserved_loss: bool = True,
           confidence: tuple[float, float, float] = CONFIDENCE, seed: SeedLike = None,
           return_info: bool = False) -> Swivel | tuple[Swivel, Info]:
    r"""Fit Swivel embeddings to a co-occurrence matrix by sharded Adagrad.

    See :mod:`refimpl.completion.swivel` for the loss (Shazeer et al., 2016). Vectors start
    i.i.d. :math:`\mathcal N(0, 1/\text{dim})`; each block step applies Adagrad,
    :math:`h \mathrel{+}= g^2`, :math:`\theta \mathrel{-}= \text{lr}\; g/\sqrt h`, per
    coordinate (accumulators start at ``ADAGRAD_INIT``), to the block's row and column
    vectors with the gradients summed over the block's cells.

    Parameters
    ----------
    C : (n, m) SciPy sparse matrix or array
        Nonnegative co-occurrence counts (every row and column with a nonzero marginal).
    dim : int
        Embedding size.
    n_epochs : int
        Passes over all blocks.
    lr : float
        Adagrad learning rate.
    shard_size : int
        Rows (and columns) per shard, at most; blocks are dense ``shard_size²`` arrays.
    unobserved_loss : bool
        Train the zero cells with the soft hinge :math:`\mathcal L_1` (Swivel). ``False``
        skips them (observed cells only, as GloVe does).
    confidence : tuple of float
        ``(b, s, e)`` of the confidence :math:`f(x) = b + s x^e` (default the paper's).
    seed : int, numpy.random.Generator or None
        Draws the initial vectors and the order of the blocks.
    return_info : bool
        Also return an :class:`~refimpl.results.Info` whose ``errors`` are the mean loss per
        cell (over all cells, unobserved ones counted only with ``unobserved_loss``) in each
        epoch, each block's loss taken just before its step.

    Returns
    -------
    Swivel
        With ``return_info``, ``(result, info)``.

    Raises
    ------
    ValueError
        If ``C`` is invalid (negative, empty, an all-zero row or column) or a parameter is
        out of range.
    """
    X = _counts(C)
    n, m = X.shape
    dim = check_positive_int(dim, "dim")
    n_epochs = check_nonnegative_int(n_epochs, "n_epochs")
    lr = check_positive(lr, "lr")
    shard_size = check_positive_int(shard_size, "shard_size")
    if len(confidence) != 3:
        raise ValueError(f"confidence must be (base, scale, exponent); got {confidence!r}")
    conf = (check_positive(confidence[0], "confidence[0]", allow_zero=True),
            check_positive(confidence[1], "confidence[1]", allow_zero=True),
            check_positive(confidence[2], "confidence[2]", allow_zero=True))
    if conf[0] == 0 and conf[1] == 0:
        raise ValueError("confidence must not be identically zero")
    rs = np.asarray(X.sum(axis=1)).ravel()
    cs = np.asarray(X.sum(axis=0)).ravel()
    if rs.min() <= 0 or cs.min() <= 0:
        raise ValueError("C must have no all-zero row or column (their PMI is undefined); "
                         f"{int((rs <= 0).sum())} rows and {int((cs <= 0).sum())} columns are")
    log_r, log_c, log_total = np.log(rs), np.log(cs), float(np.log(X.data.sum()))
    rng = as_generator(seed)
    W = rng.standard_normal((n, dim)) / np.sqrt(dim)
    Cc = rng.standard_normal((m, dim)) / np.sqrt(dim)
    hW = np.full_like(W, ADAGRAD_INIT)
    hC = np.full_like(Cc, ADAGRAD_INIT)
    row_shards, col_shards = _shards(rs, shard_size), _shards(cs, shard_size)
    blocks = [(a, b) for a in range(len(row_shards)) for b in range(len(col_shards))]
    row_parts = [X[r] for r in row_shards]
    n_cells = n * m if unobserved_loss else X.nnz
    errors = []
    for _ in range(n_epochs):
        total = 0.0
        for k in rng.permutation(len(blocks)):
            a, b = blocks[k]
            rows, cols = row_shards[a], col_shards[b]
            Xb = np.asarray(row_parts[a][:, cols].toarray())
            loss, gW, gC = _block_loss_grad(W[rows], Cc[cols], Xb, log_r[rows], log_c[cols],
                                            log_total, conf, bool(unobserved_loss))
            total += loss
            hW[rows] += gW * gW
            hC[cols] += gC * gC
            W[rows] -= lr * gW / np.sqrt(hW[rows])
            Cc[cols] -= lr * gC / np.sqrt(hC[cols])
        errors.append(total / n_cells)
    out = Swivel(W, Cc)
    if return_info:
        return out, Info(n_epochs, True, tuple(errors))
    return out


# --------------------------------------------------------------------------- evaluation


def _unit_rows(emb: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms > 0, norms, 1.0)


def nearest(emb: ArrayLike, vocab: Sequence[str], word: str,
            k: int = 10) -> list[tuple[str, float]]:
    """The ``k`` words of highest cosine similarity to ``word`` (itself excluded).

    Parameters
    ----------
    emb : (V, d) array
        One embedding per word of ``vocab``.
    vocab : sequence of str
        The words, in the order of the rows of ``emb``.
    word : str
        The query.
    k : int
        How many neighbours.

    Returns
    -------
    list of (str, float)
        ``(word, cosine)``, most similar first.

    Raises
    ------
    ValueError
        If ``word`` is not in ``vocab``, the lengths disagree or ``k`` is too large.
    """
    E = np.asarray(check_array(emb, "emb", allow_torch=False), dtype=np.float64)
    if len(vocab) != E.shape[0]:
        raise ValueError(f"vocab has {len(vocab)} words but emb has {E.shape[0]} rows")
    index = {w: i for i, w in enumerate(vocab)}
    if word not in index:
        raise ValueError(f"word {word!r} is not in the vocabulary")
    k = check_rank(k, "k", E.shape[0] - 1, what="the other words")
    U = _unit_rows(E)
    sims = U @ U[index[word]]
    sims[index[word]] = -np.inf
    top = np.argsort(-sims, kind="stable")[:k]
    return [(vocab[i], float(sims[i])) for i in top]


def similarity_score(emb: ArrayLike, vocab: Sequence[str],
                     pairs: Iterable[tuple[str, str, float]]) -> tuple[float, int]:
    """Spearman correlation of cosine similarities with human similarity judgements.

    Parameters
    ----------
    emb : (V, d) array
        One embedding per word of ``vocab``.
    vocab : sequence of str
        The words.
    pairs : iterable of (str, str, float)
        Word pairs and their judged similarity; pairs with a word outside ``vocab`` are
        skipped.

    Returns
    -------
    rho : float
        Spearman's rank correlation over the pairs used.
    used : int
        How many pairs were in the vocabulary.

    Raises
    ------
    ValueError
        If fewer than two pairs are in the vocabulary.
    """
    from scipy.stats import spearmanr

    E = np.asarray(check_array(emb, "emb", allow_torch=False), dtype=np.float64)
    if len(vocab) != E.shape[0]:
        raise ValueError(f"vocab has {len(vocab)} words but emb has {E.shape[0]} rows")
    index = {w: i for i, w in enumerate(vocab)}
    U = _unit_rows(E)
    cos, gold = [], []
    for a, b, score in pairs:
        if a in index and b in index:
            cos.append(float(U[index[a]] @ U[index[b]]))
            gold.append(float(score))
    if len(cos) < 2:
        raise ValueError(f"only {len(cos)} of the pairs are in the vocabulary; need 2")
    return float(spearmanr(cos, gold).statistic), len(cos)
