r"""Nonnegative matrix factorization: multiplicative updates, HALS, semi-NMF and NNDSVD.

NMF seeks :math:`W \ge 0` (m×k) and :math:`H \ge 0` (k×n) with :math:`X \approx WH` for a
nonnegative :math:`X`, minimising, over the entries with weight :math:`M_{ij} \ge 0`
(all ones unless ``weights`` is given; a weight of 0 marks a missing entry),

.. math:: D_F = \tfrac12 \sum_{ij} M_{ij} (X - WH)_{ij}^2 \quad\text{or}\quad
          D_{KL} = \sum_{ij} M_{ij}\Big(X_{ij}\log\frac{X_{ij}}{(WH)_{ij}} - X_{ij}
          + (WH)_{ij}\Big).

- **Multiplicative updates** (Lee & Seung, 2001), ``method="mu"``: for the Frobenius loss
  :math:`H \leftarrow H \odot \frac{W^\top (M\odot X)}{W^\top (M \odot WH)}`, and for the
  generalised KL divergence
  :math:`H \leftarrow H \odot \frac{W^\top (M\odot X / WH)}{W^\top M}` (and the mirror
  images for :math:`W`). Neither loss increases under its update.
- **HALS** (Cichocki & Phan, 2009), ``method="hals"``: exact minimisation over one column
  :math:`w_j` (then one row :math:`h_j`) at a time,
  :math:`w_j \leftarrow \max\!\big(0, w_j + \frac{(XH^\top)_{:j} - W (HH^\top)_{:j}}
  {(HH^\top)_{jj}}\big)`, with the Gram products formed once per outer iteration.
  With ``inner > 1`` each factor gets several passes per pair of Gram products, stopped
  early once a pass changes little: accelerated HALS (Gillis & Glineur, 2012).
  With weights the Gram shortcut no longer holds; the coordinate update is then
  :math:`w_{ij} = \max\!\big(0, \frac{\sum_l M_{il} R_{il} h_{jl}}{\sum_l M_{il} h_{jl}^2}\big)`
  for the residual :math:`R = X - \sum_{r \ne j} w_r h_r` (an exact loop that reads all of
  :math:`M` and :math:`R` for every column; the Numba path keeps :math:`R` in place).
- **Semi-NMF** (Ding, Li & Jordan, 2010): :math:`X \approx F G^\top` for :math:`X` of any
  sign, :math:`F` unconstrained, :math:`G \ge 0`.
- **NNDSVD** (Boutsidis & Gallopoulos, 2008): the initial :math:`(W, H)` from the positive
  (or negative) parts of the leading singular pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple, overload

import numpy as np

from refimpl import _xp
from refimpl._typing import Array, SeedLike
from refimpl._validation import (
    check_array,
    check_choice,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
    check_same_kind,
)
from refimpl.backend import is_torch_tensor
from refimpl.results import Info

#: Guard of the multiplicative updates: denominators, and ``WH`` inside ``X / WH``, are
#: floored at this value (float32's machine epsilon, the constant scikit-learn uses).
MU_EPS = float(np.finfo(np.float32).eps)

#: Accelerated HALS (``inner > 1``): the passes over a factor stop once one changes it by
#: less than this fraction of the first pass's change (Gillis & Glineur's rule, their ε).
INNER_EPS = 0.1

_METHODS = ("hals", "mu")
_LOSSES = ("frobenius", "kl")
_INITS = ("nndsvd", "nndsvda", "nndsvdar", "random", "custom")


class NMF(NamedTuple):
    """``X ≈ W @ H`` with ``W ≥ 0`` and ``H ≥ 0``.

    Attributes
    ----------
    W : (m, k) array or tensor
        Nonnegative left factor.
    H : (k, n) array or tensor
        Nonnegative right factor.
    """

    W: Any
    H: Any

    def reconstruct(self) -> Array:
        """``W H``."""
        return self.W @ self.H

    def loss(self, X: Array, kind: str = "frobenius", weights: Array | None = None) -> float:
        r"""The objective at these factors: :math:`\tfrac12\|M\odot(X - WH)\|_F^2` or the
        generalised KL divergence (see :mod:`refimpl.nonneg.nmf`).

        Parameters
        ----------
        X : (m, n) array or tensor
            The factorized matrix, the same kind as ``W``.
        kind : {"frobenius", "kl"}
            Which loss.
        weights : (m, n) array or tensor, optional
            Per-entry weights ``M`` (default all ones).

        Returns
        -------
        float
            The loss (KL: ``X log(X / WH)`` counts 0 where ``X = 0``; ``WH`` is floored at
            ``MU_EPS`` inside the logarithm).

        Raises
        ------
        ValueError
            If ``kind`` is not a known loss.
        """
        kind = check_choice(kind, "kind", _LOSSES)
        return _loss(X, self.W @ self.H, kind, weights)


class SemiNMF(NamedTuple):
    """``X ≈ F @ G.T`` with ``G ≥ 0`` and ``F`` of any sign.

    Attributes
    ----------
    F : (m, k) array or tensor
        Unconstrained left factor (cluster centroids in Ding, Li & Jordan's reading).
    G : (n, k) array or tensor
        Nonnegative right factor (soft cluster indicators).
    """

    F: Any
    G: Any

    def reconstruct(self) -> Array:
        """``F Gᵀ``."""
        return self.F @ _xp.mT(self.G)


# --------------------------------------------------------------------------- helpers


def _floor(x: Any, c: float) -> Any:
    """``max(x, c)`` entrywise, for either kind."""
    return x.clamp(min=c) if is_torch_tensor(x) else np.maximum(x, c)


def _loss(X: Any, WH: Any, kind: str, M: Any) -> float:
    if kind == "frobenius":
        D = X - WH
        return 0.5 * float(((D * D) if M is None else (M * D * D)).sum())
    WHs = _floor(WH, MU_EPS)
    if is_torch_tensor(X):
        import torch

        term = torch.xlogy(X, X / WHs) - X + WH
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(X > 0, X * np.log(np.where(X > 0, X, 1.0) / WHs), 0.0)
        term = logs - X + WH
    return float((term if M is None else M * term).sum())


def _to_float(A: Any) -> Any:
    """The NumPy paths compute in float64 (the reference); torch keeps the input's dtype."""
    return A if is_torch_tensor(A) else A.astype(np.float64, copy=False)


def _weights(weights: object, X: Any, like: Array, path: str) -> Any:
    """Checked per-entry weights on ``X``'s path, or ``None``."""
    if weights is None:
        return None
    M = check_array(weights, "weights")
    check_same_kind("X", like, "weights", M)
    if tuple(M.shape) != tuple(X.shape):
        raise ValueError(f"weights must have the shape of X {tuple(X.shape)}; got "
                         f"{tuple(M.shape)}")
    M = _to_float(_xp.to_path(M, path, like=X))
    check_nonnegative(M, "weights")
    for axis, what in ((1, "row"), (0, "column")):
        empty = (M.sum(axis) == 0) if not is_torch_tensor(M) else (M.sum(dim=axis) == 0)
        if bool(empty.any()):
            idx = int(np.flatnonzero(_xp.to_numpy(empty))[0])
            raise ValueError(f"weights: {what} {idx} of X has no observed entry (all weights "
                             f"0); its factor would be undetermined")
    return M


def _relative_stop(errors: list[float], tol: float) -> bool:
    """The stopping test: the last decrease of the loss relative to the previous loss."""
    prev, cur = errors[-2], errors[-1]
    if cur == 0.0:
        return True
    return tol > 0 and (prev - cur) <= tol * abs(prev)


# --------------------------------------------------------------------------- NNDSVD


def nndsvd(X: Array, rank: int, *, variant: str = "nndsvd", seed: SeedLike = None,
           svd: str = "exact") -> NMF:
    r"""NNDSVD initialisation of NMF (Boutsidis & Gallopoulos, 2008).

    With the leading singular triplets :math:`(\sigma_j, u_j, v_j)` of ``X``, the first pair
    is :math:`\sqrt{\sigma_1}(|u_1|, |v_1|)`; for :math:`j \ge 2` the positive parts
    :math:`(u_j^+, v_j^+)` or the negative parts :math:`(u_j^-, v_j^-)`, whichever has the
    larger :math:`\|u\|\,\|v\|`, are normalised and scaled by
    :math:`\sqrt{\sigma_j \|u\|\,\|v\|}`. The sign ambiguity of singular vectors does not
    matter (flipping both swaps the two parts). Entries below ``1e-6`` are set to zero
    (as scikit-learn does); ``"nndsvda"`` then fills every zero with the mean of ``X``,
    ``"nndsvdar"`` with ``|mean(X) · z| / 100`` for standard normal ``z``.

    Parameters
    ----------
    X : (m, n) array or torch tensor
        Nonnegative, finite floating-point matrix.
    rank : int
        Number of components ``k``, ``1 <= k <= min(m, n)``.
    variant : {"nndsvd", "nndsvda", "nndsvdar"}
        How zeros are filled (see above).
    seed : int or numpy.random.Generator, optional
        Randomness of ``"nndsvdar"`` and of ``svd="randomized"``.
    svd : {"exact", "randomized"}
        ``"exact"`` (deterministic, the default) or :func:`refimpl.sketch.randomized_svd`.

    Returns
    -------
    NMF
        ``W`` (m, k) and ``H`` (k, n), nonnegative, of ``X``'s kind and dtype.

    Raises
    ------
    TypeError
        If ``X`` is not a real floating-point array or ``rank`` not an integer.
    ValueError
        If ``X`` is empty, not finite, not 2-D or has a negative entry; if ``rank`` is
        outside ``[1, min(m, n)]``; if ``variant`` or ``svd`` is not a known name.
    """
    X, _, back = _xp.prepare(X, "X", backend="auto", paths=("numpy", "torch"))
    k = check_rank(rank, "rank", min(X.shape))
    variant = check_choice(variant, "variant", ("nndsvd", "nndsvda", "nndsvdar"))
    svd = check_choice(svd, "svd", ("exact", "randomized"))
    check_nonnegative(X, "X")
    return back(_nndsvd(_to_float(X), k, variant, seed, svd))


def _nndsvd(X: Any, k: int, variant: str, seed: SeedLike, svd: str) -> NMF:
    from refimpl.seeding import as_generator

    torch_in = is_torch_tensor(X)
    if svd == "exact":
        U, s, Vt = _xp.svd(_xp.linalg_float(X))
        U, s, Vt = U[:, :k], s[:k], Vt[:k]
    else:
        from refimpl.sketch import randomized_svd

        U, s, Vt, _ = randomized_svd(X, k, seed=seed)
    W = _xp.zeros_like_shape((X.shape[0], k), X)
    H = _xp.zeros_like_shape((k, X.shape[1]), X)
    W[:, 0] = float(s[0]) ** 0.5 * abs(U[:, 0])
    H[0, :] = float(s[0]) ** 0.5 * abs(Vt[0, :])
    for j in range(1, k):
        x, y = U[:, j], Vt[j, :]
        xp, yp = _floor(x, 0.0), _floor(y, 0.0)
        xn, yn = _floor(-x, 0.0), _floor(-y, 0.0)
        nxp, nyp = _norm(xp), _norm(yp)
        nxn, nyn = _norm(xn), _norm(yn)
        mp, mn = nxp * nyp, nxn * nyn
        if mp > mn:
            u, v, sigma = xp / nxp, yp / nyp, mp
        elif mn > 0:
            u, v, sigma = xn / nxn, yn / nyn, mn
        else:  # both parts vanish: the component starts at zero
            continue
        scale = (float(s[j]) * sigma) ** 0.5
        W[:, j] = scale * u
        H[j, :] = scale * v
    W[W < 1e-6] = 0.0
    H[H < 1e-6] = 0.0
    if variant == "nndsvda":
        avg = float(X.mean())
        W[W == 0] = avg
        H[H == 0] = avg
    elif variant == "nndsvdar":
        avg = float(X.mean())
        rng = as_generator(seed)
        for F in (W, H):
            zero = F == 0
            count = int(zero.sum())
            fill = np.abs(avg * rng.standard_normal(count) / 100)
            F[zero] = _xp.to_path(fill, "torch", like=X) if torch_in else fill
    return NMF(W, H)


# --------------------------------------------------------------------------- NMF


@overload
def nmf(X: Array, rank: int, *, method: str = ..., loss: str = ..., init: str = ...,
        W0: Array | None = ..., H0: Array | None = ..., weights: Array | None = ...,
        max_iter: int = ..., tol: float = ..., inner: int = ..., seed: SeedLike = ...,
        backend: str = ...,
        return_info: Literal[False] = ...) -> NMF: ...
@overload
def nmf(X: Array, rank: int, *, method: str = ..., loss: str = ..., init: str = ...,
        W0: Array | None = ..., H0: Array | None = ..., weights: Array | None = ...,
        max_iter: int = ..., tol: float = ..., inner: int = ..., seed: SeedLike = ...,
        backend: str = ...,
        return_info: Literal[True]) -> tuple[NMF, Info]: ...
@overload
def nmf(X: Array, rank: int, *, method: str = ..., loss: str = ..., init: str = ...,
        W0: Array | None = ..., H0: Array | None = ..., weights: Array | None = ...,
        max_iter: int = ..., tol: float = ..., inner: int = ..., seed: SeedLike = ...,
        backend: str = ...,
        return_info: bool) -> NMF | tuple[NMF, Info]: ...
def nmf(X: Array, rank: int, *, method: str = "hals", loss: str = "frobenius",
        init: str = "nndsvda", W0: Array | None = None, H0: Array | None = None,
        weights: Array | None = None, max_iter: int = 200, tol: float = 1e-4,
        inner: int = 1, seed: SeedLike = None, backend: str = "auto",
        return_info: bool = False) -> NMF | tuple[NMF, Info]:
    r"""Nonnegative matrix factorization ``X ≈ W H`` by multiplicative updates or HALS.

    Each outer iteration updates ``W`` then ``H`` (the order scikit-learn uses). After it the
    loss :math:`L_t` of :mod:`refimpl.nonneg.nmf` is evaluated; the loop stops when
    :math:`L_{t-1} - L_t \le \mathrm{tol}\cdot L_{t-1}` (a relative decrease below ``tol``),
    when :math:`L_t = 0`, or after ``max_iter`` iterations. ``tol=0`` runs exactly
    ``max_iter`` iterations (unless the loss reaches 0).

    Parameters
    ----------
    X : (m, n) array or torch tensor
        Nonnegative, finite floating-point matrix (NaN is refused: mark missing entries with
        a zero weight, the value of ``X`` there is then ignored).
    rank : int
        Number of components ``k``, ``1 <= k <= min(m, n)``.
    method : {"hals", "mu"}
        ``"hals"``: hierarchical alternating least squares (Frobenius loss only);
        ``"mu"``: Lee–Seung multiplicative updates. The multiplicative updates floor their
        denominators, and ``WH`` inside ``X / WH``, at ``MU_EPS`` (float32's epsilon, as
        scikit-learn), so that a zero never divides; factors that reach zero stay zero.
    loss : {"frobenius", "kl"}
        :math:`\tfrac12\|M\odot(X - WH)\|_F^2` or the generalised KL divergence.
    init : {"nndsvda", "nndsvd", "nndsvdar", "random", "custom"}
        Initial factors: :func:`nndsvd` of ``X`` (of ``weights ⊙ X`` when weighted, so that
        masked entries have no influence), ``"random"``: uniform entries scaled by
        ``sqrt(mean(X) / k)`` (as scikit-learn), or ``"custom"``: ``W0`` and ``H0``.
    W0, H0 : array or tensor, optional
        The initial factors for ``init="custom"`` (required then, refused otherwise);
        nonnegative, of shapes (m, k) and (k, n), the same kind as ``X``. Not modified.
    weights : (m, n) array or tensor, optional
        Nonnegative per-entry weights ``M``; 0 marks a missing entry (a 0/1 mask is the
        common case). Every row and column needs a positive weight. Weighted HALS runs the
        exact coordinate update on the residual (NumPy/BLAS or torch, ``O(mnk)`` per
        iteration, no Numba kernel).
    max_iter : int
        Upper bound on outer iterations, ``>= 0``.
    tol : float
        Relative-decrease tolerance of the stopping test, ``>= 0``.
    inner : int
        HALS passes over each factor per pair of Gram products, ``>= 1``. ``1`` is HALS
        (Cichocki & Phan; the same updates, in the same order, as scikit-learn's
        ``solver="cd"``). More is accelerated HALS (Gillis & Glineur, 2012): the Gram
        products cost ``O(mnk)`` and a pass ``O((m+n)k²)``, so repeating the cheap passes
        gains more per product; the passes stop early once one changes the factor by less
        than ``INNER_EPS`` (0.1) times the first pass's change (in Frobenius norm).
        Unweighted HALS only.
    seed : int or numpy.random.Generator, optional
        Randomness of ``init="random"`` and ``"nndsvdar"``.
    backend : {"auto", "numpy", "numba", "torch"}
        ``"numpy"``: the reference, float64, the equations as written; ``"numba"``: HALS
        sweeps in compiled kernels (unweighted: over Gram products formed by BLAS; weighted:
        on the residual, kept in place; MU is the NumPy code); ``"torch"``: any device, in
        the input's dtype. ``"auto"``: Numba for NumPy input, torch for tensors.
    return_info : bool
        Also return an :class:`refimpl.results.Info` whose ``errors`` are the loss after
        each iteration.

    Returns
    -------
    NMF
        ``W`` (m, k) and ``H`` (k, n), nonnegative, of ``X``'s kind, device and dtype.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``X``, ``W0``, ``H0`` or ``weights`` is not a real floating-point array (or not
        the kind of ``X``), or ``rank``/``max_iter`` is not an integer.
    ValueError
        If ``X`` is empty, not 2-D, not finite or has a negative entry (the message gives
        the smallest entry); if ``rank`` is outside ``[1, min(m, n)]``; if ``method``,
        ``loss`` or ``init`` is not a known name, or ``method="hals"`` with ``loss="kl"``;
        if ``W0``/``H0`` are missing for ``init="custom"``, given otherwise, negative or of
        the wrong shape; if ``weights`` has the wrong shape, a negative entry, or leaves a
        row or column of ``X`` with no observed entry.
    """
    X_in = X
    X, path, back = _xp.prepare(X, "X", backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba", batch=False)
    X = _to_float(X)
    m, n = X.shape
    k = check_rank(rank, "rank", min(m, n))
    method = check_choice(method, "method", _METHODS)
    loss = check_choice(loss, "loss", _LOSSES)
    init = check_choice(init, "init", _INITS)
    if method == "hals" and loss != "frobenius":
        raise ValueError(f"method='hals' minimises loss='frobenius' only; got loss={loss!r} "
                         f"(use method='mu' for the KL divergence)")
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    inner = check_positive_int(inner, "inner")
    check_nonnegative(X, "X")
    M = _weights(weights, X, X_in, path)
    if inner > 1 and (method != "hals" or M is not None):
        raise ValueError(f"inner > 1 (accelerated HALS) applies to unweighted HALS only; got "
                         f"inner={inner} with method={method!r}"
                         + (" and weights" if M is not None else ""))

    if init == "custom":
        if W0 is None or H0 is None:
            raise ValueError("init='custom' needs both W0 and H0")
        W = _factor(W0, "W0", (m, k), X, X_in, path)
        H = _factor(H0, "H0", (k, n), X, X_in, path)
    else:
        if W0 is not None or H0 is not None:
            raise ValueError(f"W0 and H0 are used only with init='custom'; got init={init!r}")
        W, H = _initialise(X if M is None else M * X, k, init, seed)

    if method == "hals" and M is None:
        if path == "numba":
            W, H, errors = _hals_numba(X, W, H, max_iter, tol, inner)
        else:
            W, H, errors = _hals(X, W, H, max_iter, tol, inner)
    elif method == "hals" and path == "numba":
        W, H, errors = _hals_weighted_numba(X, M, W, H, max_iter, tol)
    elif method == "hals":
        W, H, errors = _hals_weighted(X, M, W, H, max_iter, tol)
    else:
        W, H, errors = _mu(X, M, W, H, loss, max_iter, tol)
    n_iter = len(errors) - 1
    converged = n_iter < max_iter or (n_iter > 0 and _relative_stop(errors, tol))
    result = back(NMF(W, H))
    if return_info:
        return result, Info(n_iter, bool(converged), tuple(errors[1:]))
    return result


def _factor(F: object, name: str, shape: tuple[int, int], X: Any, like: Array,
            path: str) -> Any:
    F = check_array(F, name)
    check_same_kind("X", like, name, F)
    if tuple(F.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}; got {tuple(F.shape)}")
    F = _to_float(_xp.to_path(F, path, like=X))
    check_nonnegative(F, name)
    return F.clone() if is_torch_tensor(F) else np.array(F, dtype=np.float64, copy=True)


def _initialise(X: Any, k: int, init: str, seed: SeedLike) -> tuple[Any, Any]:
    if init == "random":
        from refimpl.seeding import as_generator

        rng = as_generator(seed)
        scale = (float(X.mean()) / k) ** 0.5
        m, n = X.shape
        W = scale * rng.standard_normal((m, k))
        H = scale * rng.standard_normal((k, n))
        W, H = np.abs(W), np.abs(H)
        if is_torch_tensor(X):
            return _xp.to_path(W, "torch", like=X), _xp.to_path(H, "torch", like=X)
        return W, H
    W, H = _nndsvd(X, k, init, seed, "exact")
    return W, H


def _norm(x: Any) -> float:
    return float((x * x).sum()) ** 0.5


def _sqnorm(X: Any) -> float:
    return float((X * X).sum())


def _gram_loss(x2: float, WtX: Any, WtW: Any, H: Any, transposed: bool = False) -> float:
    """``½‖X − WH‖²`` from Gram products: ``½(‖X‖² − 2⟨WᵀX, H⟩ + ⟨WᵀW, HHᵀ⟩)``.

    With ``transposed``, ``WtX`` and ``H`` are ``XᵀW`` and ``Hᵀ``.
    """
    HHt = _xp.mT(H) @ H if transposed else H @ _xp.mT(H)
    return 0.5 * max(x2 - 2.0 * float((WtX * H).sum()) + float((WtW * HHt).sum()), 0.0)


def _exact_if_small(err: float, x2: float, X: Any, W: Any, H: Any) -> float:
    """The Gram form of the loss cancels to ``~ε‖X‖²``: below ``1e-8‖X‖²`` recompute it
    from the residual (so that a stopping test near an exact fit reads the true loss)."""
    return _loss(X, W @ H, "frobenius", None) if err < 1e-8 * x2 else err


def _sweep_columns(W: Any, P: Any, G: Any) -> float:
    """One HALS pass over the columns of ``W`` against ``P = X Hᵀ``, ``G = H Hᵀ`` (NumPy or
    torch, in place); returns the squared norm of the change."""
    change = 0.0
    for j in range(W.shape[1]):
        if float(G[j, j]) > 0:
            new = _floor(W[:, j] + (P[:, j] - W @ G[:, j]) / G[j, j], 0.0)
            change += _sqnorm(new - W[:, j])
            W[:, j] = new
    return change


def _inner_sweeps(sweep: Callable[[Any, Any, Any], float], F: Any, P: Any, G: Any,
                  inner: int) -> None:
    """Up to ``inner`` passes ``sweep(F, P, G)`` over the factor ``F``, stopping early once a
    pass changes it by less than ``INNER_EPS`` times the first pass's change (Gillis &
    Glineur)."""
    first = sweep(F, P, G)
    for _ in range(inner - 1):
        if sweep(F, P, G) <= INNER_EPS**2 * first:
            break


def _hals(X: Any, W: Any, H: Any, max_iter: int, tol: float,
          inner: int) -> tuple[Any, Any, list[float]]:
    """Reference HALS (NumPy or torch): column by column, Gram products once per outer
    iteration and up to ``inner`` passes over each factor against them. ``H`` is updated
    through its transpose (a view), the same column pass."""
    x2 = _sqnorm(X)
    errors = [_loss(X, W @ H, "frobenius", None)]
    Ht = _xp.mT(H)
    for _ in range(max_iter):
        XHt, HHt = X @ Ht, _xp.mT(Ht) @ Ht
        _inner_sweeps(_sweep_columns, W, XHt, HHt, inner)
        XtW, WtW = _xp.mT(X) @ W, _xp.mT(W) @ W
        _inner_sweeps(_sweep_columns, Ht, XtW, WtW, inner)
        errors.append(_exact_if_small(_gram_loss(x2, XtW, WtW, Ht, transposed=True), x2,
                                      X, W, H))
        if _relative_stop(errors, tol):
            break
    return W, H, errors


def _hals_numba(X: np.ndarray, W: np.ndarray, H: np.ndarray, max_iter: int,
                tol: float, inner: int) -> tuple[Any, Any, list[float]]:
    """HALS with the sweeps compiled; ``H`` is held as ``Hᵀ`` (n×k, C-ordered) so that both
    half-steps are the same row-wise kernel."""
    from refimpl.nonneg._nmf_numba import hals_sweep

    W = np.ascontiguousarray(W)
    Ht = np.ascontiguousarray(H.T)
    Xt = X.T
    x2 = _sqnorm(X)
    errors = [_loss(X, W @ H, "frobenius", None)]
    for _ in range(max_iter):
        XHt, HtH = X @ Ht, Ht.T @ Ht
        _inner_sweeps(hals_sweep, W, XHt, HtH, inner)
        XtW, WtW = Xt @ W, W.T @ W
        _inner_sweeps(hals_sweep, Ht, XtW, WtW, inner)
        err = _gram_loss(x2, XtW, WtW, Ht, transposed=True)
        errors.append(_exact_if_small(err, x2, X, W, Ht.T))  # ⟨WᵀX, H⟩ = ⟨XᵀW, Hᵀ⟩
        if _relative_stop(errors, tol):
            break
    return W, np.ascontiguousarray(Ht.T), errors


def _hals_weighted(X: Any, M: Any, W: Any, H: Any, max_iter: int,
                   tol: float) -> tuple[Any, Any, list[float]]:
    """Weighted HALS: the exact coordinate update of each column/row on the residual."""
    E = X - W @ H
    errors = [_loss(X, W @ H, "frobenius", M)]
    k = W.shape[1]
    for _ in range(max_iter):
        for j in range(k):
            R = E + W[:, j:j + 1] * H[j:j + 1, :]
            h = H[j, :]
            den = M @ (h * h)
            num = (M * R) @ h
            safe = den > 0
            new = _floor(num / (den + ~safe), 0.0)  # den = 0 implies num = 0
            W[:, j] = new * safe + W[:, j] * ~safe
            E = R - W[:, j:j + 1] * H[j:j + 1, :]
        for j in range(k):
            R = E + W[:, j:j + 1] * H[j:j + 1, :]
            w = W[:, j]
            den = (w * w) @ M
            num = w @ (M * R)
            safe = den > 0
            new = _floor(num / (den + ~safe), 0.0)  # den = 0 implies num = 0
            H[j, :] = new * safe + H[j, :] * ~safe
            E = R - W[:, j:j + 1] * H[j:j + 1, :]
        errors.append(0.5 * float((M * E * E).sum()))
        if _relative_stop(errors, tol):
            break
    return W, H, errors


def _hals_weighted_numba(X: np.ndarray, M: np.ndarray, W: np.ndarray, H: np.ndarray,
                         max_iter: int, tol: float) -> tuple[Any, Any, list[float]]:
    """Weighted HALS with both half-steps compiled, the residual kept in place."""
    from refimpl.nonneg._nmf_numba import weighted_hals_h, weighted_hals_w

    W, H = np.ascontiguousarray(W), np.ascontiguousarray(H)
    M = np.ascontiguousarray(M, dtype=np.float64)
    E = np.ascontiguousarray(X - W @ H)
    errors = [_loss(X, W @ H, "frobenius", M)]
    for _ in range(max_iter):
        weighted_hals_w(E, M, W, H)
        weighted_hals_h(E, M, W, H)
        errors.append(0.5 * float((M * E * E).sum()))
        if _relative_stop(errors, tol):
            break
    return W, H, errors


def _mu(X: Any, M: Any, W: Any, H: Any, loss: str, max_iter: int,
        tol: float) -> tuple[Any, Any, list[float]]:
    """Lee–Seung multiplicative updates (weighted when ``M`` is given), W then H."""
    eps = MU_EPS
    Wt = _xp.mT
    MX = X if M is None else M * X
    x2 = _sqnorm(X) if M is None else 0.0
    errors = [_loss(X, W @ H, loss, M)]
    for _ in range(max_iter):
        if loss == "frobenius":
            if M is None:
                W = W * (X @ Wt(H)) / _floor(W @ (H @ Wt(H)), eps)
                WtX, WtW = Wt(W) @ X, Wt(W) @ W
                H = H * WtX / _floor(WtW @ H, eps)
                err = _exact_if_small(_gram_loss(x2, WtX, WtW, H), x2, X, W, H)
            else:
                W = W * (MX @ Wt(H)) / _floor((M * (W @ H)) @ Wt(H), eps)
                H = H * (Wt(W) @ MX) / _floor(Wt(W) @ (M * (W @ H)), eps)
                err = _loss(X, W @ H, loss, M)
        else:
            ones = M
            ratio = MX / _floor(W @ H, eps)
            den_w = (H.sum(1)[None, :] if ones is None else M @ Wt(H))
            W = W * (ratio @ Wt(H)) / _floor(den_w, eps)
            ratio = MX / _floor(W @ H, eps)
            den_h = (W.sum(0)[:, None] if ones is None else Wt(W) @ M)
            H = H * (Wt(W) @ ratio) / _floor(den_h, eps)
            err = _loss(X, W @ H, loss, M)
        errors.append(err)
        if _relative_stop(errors, tol):
            break
    return W, H, errors


# --------------------------------------------------------------------------- semi-NMF


@overload
def semi_nmf(X: Array, rank: int, *, G0: Array | None = ..., max_iter: int = ...,
             tol: float = ..., backend: str = ...,
             return_info: Literal[False] = ...) -> SemiNMF: ...
@overload
def semi_nmf(X: Array, rank: int, *, G0: Array | None = ..., max_iter: int = ...,
             tol: float = ..., backend: str = ...,
             return_info: Literal[True]) -> tuple[SemiNMF, Info]: ...
@overload
def semi_nmf(X: Array, rank: int, *, G0: Array | None = ..., max_iter: int = ...,
             tol: float = ..., backend: str = ...,
             return_info: bool) -> SemiNMF | tuple[SemiNMF, Info]: ...
def semi_nmf(X: Array, rank: int, *, G0: Array | None = None, max_iter: int = 200,
             tol: float = 1e-4, backend: str = "auto",
             return_info: bool = False) -> SemiNMF | tuple[SemiNMF, Info]:
    r"""Semi-NMF ``X ≈ F Gᵀ`` with ``G ≥ 0`` (Ding, Li & Jordan, 2010).

    Each iteration solves for ``F`` by least squares, :math:`F = XG(G^\top G)^{+}`, then
    applies their multiplicative update

    .. math:: G \leftarrow G \odot \sqrt{\frac{(X^\top F)^+ + G (F^\top F)^-}
              {(X^\top F)^- + G (F^\top F)^+}},

    with :math:`A^\pm = (|A| \pm A)/2`; the denominator is floored at ``MU_EPS``. Neither
    step increases :math:`\|X - FG^\top\|_F^2`. The loop stops as :func:`nmf` does, on the
    relative decrease of :math:`\tfrac12\|X - FG^\top\|_F^2`.

    Parameters
    ----------
    X : (m, n) array or torch tensor
        Finite floating-point matrix of any sign.
    rank : int
        Number of components ``k``, ``1 <= k <= min(m, n)``.
    G0 : (n, k) array or tensor, optional
        Nonnegative initial ``G``. Default: :math:`|V_k| + 0.2` from the exact SVD
        :math:`X = U\Sigma V^\top` (deterministic; the offset plays the role of the 0.2 that
        Ding et al. add to their k-means indicators so that no entry starts at zero).
    max_iter : int
        Upper bound on iterations, ``>= 0``.
    tol : float
        Relative-decrease tolerance, ``>= 0`` (``0``: run ``max_iter`` iterations).
    backend : {"auto", "numpy", "torch"}
        ``"numpy"`` (float64 reference) or ``"torch"`` (any device, input dtype).
    return_info : bool
        Also return an :class:`refimpl.results.Info` whose ``errors`` are the loss
        :math:`\tfrac12\|X - FG^\top\|_F^2` after each iteration.

    Returns
    -------
    SemiNMF
        ``F`` (m, k) and ``G`` (n, k) with ``G ≥ 0``, of ``X``'s kind and dtype.
    Info
        Only with ``return_info=True``.

    Raises
    ------
    TypeError
        If ``X`` or ``G0`` is not a real floating-point array, or ``rank``/``max_iter`` is
        not an integer.
    ValueError
        If ``X`` is empty, not 2-D or not finite, ``rank`` is outside ``[1, min(m, n)]``,
        or ``G0`` has the wrong shape or a negative entry.
    """
    X_in = X
    X, path, back = _xp.prepare(X, "X", backend=backend, paths=("numpy", "torch"),
                                batch=False)
    X = _to_float(X)
    m, n = X.shape
    k = check_rank(rank, "rank", min(m, n))
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    if G0 is None:
        _, _, Vt = _xp.svd(X)
        G = abs(_xp.mT(Vt[:k])) + 0.2
    else:
        G = _factor(G0, "G0", (n, k), X, X_in, path)
    Gt = _xp.mT

    def pos(A: Any) -> Any:
        return (abs(A) + A) / 2

    def neg(A: Any) -> Any:
        return (abs(A) - A) / 2

    def solve_F(G: Any) -> Any:
        return X @ G @ _xp.pinv(Gt(G) @ G)

    F = solve_F(G)
    errors = [_loss(X, F @ Gt(G), "frobenius", None)]
    for _ in range(max_iter):
        XtF, FtF = Gt(X) @ F, Gt(F) @ F
        num = pos(XtF) + G @ neg(FtF)
        den = neg(XtF) + G @ pos(FtF)
        G = G * (num / _floor(den, MU_EPS)) ** 0.5
        F = solve_F(G)
        errors.append(_loss(X, F @ Gt(G), "frobenius", None))
        if _relative_stop(errors, tol):
            break
    n_iter = len(errors) - 1
    converged = n_iter < max_iter or (n_iter > 0 and _relative_stop(errors, tol))
    result = back(SemiNMF(F, G))
    if return_info:
        return result, Info(n_iter, bool(converged), tuple(errors[1:]))
    return result
