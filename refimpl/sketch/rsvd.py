r"""Randomized range finder and randomized SVD (Halko, Martinsson & Tropp, 2011).

For ``A`` (m×n), a target rank ``k`` and oversampling ``p`` (``l = k + p``):

.. math::

    Y = (A A^\top)^q A\,\Omega,\quad \Omega \in \mathbb{R}^{n\times l}\ \text{Gaussian},
    \qquad Q = \operatorname{orth}(Y),\qquad B = Q^\top A = \hat U \Sigma V^\top,
    \qquad A \approx (Q\hat U_k)\,\Sigma_k V_k^\top .

The power iterations are re-normalised after every product with ``A`` or ``Aᵀ`` (QR, or the
cheaper LU with partial pivoting; the final basis is always orthonormalised by QR), which keeps
the columns of ``Y`` from collapsing onto the top singular vector in floating point. The
expected-error bound checked in the tests (HMT, Theorem 10.5, ``q = 0``, ``p ≥ 2``) is

.. math:: \mathbb{E}\,\|A - QQ^\top A\|_F \le \Bigl(1 + \frac{k}{p-1}\Bigr)^{1/2}
          \Bigl(\sum_{j>k}\sigma_j^2\Bigr)^{1/2}.

``Ω`` is drawn from NumPy's generator for ``seed`` (or passed in), so every path uses the
same test matrix. The NumPy path calls LAPACK through SciPy without copies it does not need;
the torch path runs on the input's device and accepts a batch ``(..., m, n)``.

Nearly all the work is ``2q + 2`` products of ``A`` (or ``Aᵀ``) with ``l`` columns (the
normalisations factor thin ``m × l`` and ``n × l`` matrices, the SVD of ``B`` is ``l × n``).
``sketch_dtype=float32`` runs the ``2q + 1`` products of the range finder in single precision
(twice the BLAS throughput, half the memory traffic) and only the final basis, ``B = QᵀA`` and
its SVD in ``A``'s precision: the basis is then accurate to about single precision's
``u ≈ 6e-8`` times ``‖A‖``, which leaves the error unchanged whenever the discarded singular
values are well above ``u σ₁``, and spoils it when they are not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from refimpl import _xp
from refimpl._typing import Array, ArrayT, DTypeLike
from refimpl._validation import check_choice, check_nonnegative_int, check_rank
from refimpl.linalg.svd import TruncatedSVD
from refimpl.seeding import SeedLike, as_generator

if TYPE_CHECKING:
    import torch

_NORMALIZERS = ("qr", "lu", "none")


def _check_power(n_iter, normalizer):
    """The options of the power iteration: ``n_iter >= 0`` and a normalizer."""
    check_choice(normalizer, "normalizer", _NORMALIZERS)
    return check_nonnegative_int(n_iter, "n_iter")


def _test_matrix(A, n, l, Omega, seed, path):
    """The Gaussian test matrix Ω (n×l), drawn with NumPy so that every path sees the same one.

    A given ``Omega`` was checked by :func:`refimpl._xp.operand` against the caller's input;
    here its shape is checked and it is moved beside ``A`` (already on ``path``).
    """
    if Omega is None:
        Omega = as_generator(seed).standard_normal((n, l)).astype(_xp.float_dtype(A))
    elif tuple(Omega.shape) != (n, l):
        raise ValueError(f"Omega must have shape {(n, l)}; got {tuple(Omega.shape)}")
    return _xp.to_path(Omega, path, like=A)


def _orth_numpy(Y, how):
    import scipy.linalg as sla

    if how == "qr":
        return sla.qr(Y, mode="economic", overwrite_a=True, check_finite=False)[0]
    if how == "lu":
        return sla.lu(Y, permute_l=True, overwrite_a=True, check_finite=False)[0]
    return Y


def _orth_torch(Y, how):
    import torch

    if how == "qr":
        return torch.linalg.qr(Y)[0]
    if how == "lu":
        P, L, _ = torch.linalg.lu(Y)
        return P @ L
    return Y


def _matmul_fortran(X, Y):
    """``X @ Y`` computed as ``(Yᵀ Xᵀ)ᵀ``: the same BLAS call, but the result is
    Fortran-ordered, so LAPACK's QR and LU then factor it in place without a copy."""
    return (Y.T @ X.T).T


def _sketch_dtype(sketch_dtype, path):
    """The checked dtype the power iteration runs in (``None``: the input's)."""
    if sketch_dtype is None:
        return None
    if path == "torch":
        import torch

        if isinstance(sketch_dtype, torch.dtype) and sketch_dtype.is_floating_point:
            return sketch_dtype
    else:
        import numpy as np

        try:
            dtype = np.dtype(sketch_dtype)
        except TypeError:
            dtype = None
        if dtype in (np.float32, np.float64):
            return dtype
    raise ValueError(f"sketch_dtype must be a floating dtype of the {path} path (float32 or "
                     f"float64 for NumPy); got {sketch_dtype!r}")


def _range_finder(A, n_iter, normalizer, Omega, path, sketch_dtype=None):
    """Q with orthonormal columns spanning (A Aᵀ)^q A Ω; A and Ω already on ``path``.

    With ``sketch_dtype`` the products and normalisations run in that dtype and only the
    final orthonormalisation in ``A``'s.
    """
    if path == "torch":
        orth, mm = _orth_torch, (lambda X, Y: X @ Y)
    else:
        orth, mm = _orth_numpy, _matmul_fortran
    full = A.dtype
    if sketch_dtype is not None and sketch_dtype != full:
        A, Omega = (_xp.astype(X, sketch_dtype) for X in (A, Omega))
    AT = _xp.mT(A)
    Y = mm(A, Omega)
    for _ in range(n_iter):
        Y = orth(Y, normalizer)
        Y = orth(mm(AT, Y), normalizer)
        Y = mm(A, Y)
    return orth(_xp.astype(Y, full), "qr")


def randomized_range_finder(A: ArrayT, size: int, *, n_iter: int = 2, normalizer: str = "qr",
                            Omega: ArrayT | None = None, seed: SeedLike = None,
                            sketch_dtype: DTypeLike | torch.dtype | None = None,
                            backend: str = "auto") -> ArrayT:
    """Orthonormal ``Q`` (m×size) whose range approximates the range of ``A``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    size : int
        Number of columns ``l`` of ``Q`` (target rank plus oversampling), ``l <= min(m, n)``.
    n_iter : int
        Power iterations ``q >= 0``: the sketch is ``(A Aᵀ)^q A Ω``.
    normalizer : {"qr", "lu", "none"}
        Re-normalisation between the products of a power iteration.
    Omega : (n, size) array or tensor, optional
        The test matrix (the same kind of array as ``A``); by default Gaussian from ``seed``.
    seed : int or numpy.random.Generator, optional
        Draws Ω (with NumPy, on every path).
    sketch_dtype : dtype, optional
        Run the products and normalisations in this (lower) precision, e.g.
        ``numpy.float32`` for a float64 ``A`` (see the module notes for when this keeps the
        error); ``Q`` is orthonormalised in ``A``'s dtype. Default: ``A``'s dtype.
    backend : {"auto", "numpy", "torch"}
        ``"numpy"``: SciPy's LAPACK; ``"torch"``: any device, batched.

    Returns
    -------
    array or tensor
        ``Q`` (..., m, size), the input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``size``, ``n_iter`` or ``normalizer`` is out of range, ``Omega`` has the wrong
        shape, or ``A`` is empty or not finite.
    TypeError
        If ``A`` or ``Omega`` is not a real floating-point array, they mix NumPy and torch,
        or a count is not an integer.
    """
    Omega = None if Omega is None else _xp.operand(Omega, "Omega", A)
    A, path, back = _xp.prepare(A, backend=backend)
    m, n = A.shape[-2:]
    l = check_rank(size, "size", min(m, n))
    n_iter = _check_power(n_iter, normalizer)
    return back(_range_finder(A, n_iter, normalizer, _test_matrix(A, n, l, Omega, seed, path),
                              path, _sketch_dtype(sketch_dtype, path)))


def randomized_svd(A: Array, rank: int, *, oversample: int = 10, n_iter: int = 2,
                   normalizer: str = "lu", transpose: str | bool = "auto",
                   Omega: Array | None = None, seed: SeedLike = None,
                   sketch_dtype: DTypeLike | torch.dtype | None = None,
                   backend: str = "auto") -> TruncatedSVD:
    """Rank-``rank`` randomized SVD: range finder with ``rank + oversample`` columns, then the
    SVD of the small ``B = Qᵀ A``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path).
    rank : int
        Target rank ``k``, ``1 <= k <= min(m, n)``.
    oversample : int
        Extra columns ``p >= 0`` (clipped so that ``k + p <= min(m, n)``).
    n_iter, normalizer
        See :func:`randomized_range_finder`.
    transpose : {"auto", True, False}
        Work with ``Aᵀ`` (the sketch then lives in the longer dimension); ``"auto"`` does so
        when ``m < n``.
    Omega : array or tensor, optional
        Test matrix of shape ``(n, k + p)`` (``(m, k + p)`` when transposing), the same kind
        of array as ``A``; by default Gaussian from ``seed``.
    seed, sketch_dtype, backend
        As in :func:`randomized_range_finder`; ``B = QᵀA`` and its SVD always run in ``A``'s
        dtype.

    Returns
    -------
    refimpl.linalg.TruncatedSVD
        ``U`` (..., m, k), ``s`` (..., k), ``Vt`` (..., k, n) as the input's array kind,
        device and dtype; ``tail`` is ``None`` (the discarded singular values are not
        computed).

    Raises
    ------
    ValueError
        If ``rank`` or an option is out of range, ``Omega`` has the wrong shape, or ``A`` is
        empty or not finite.
    TypeError
        If ``A`` or ``Omega`` is not a real floating-point array, they mix NumPy and torch,
        or a count is not an integer.
    """
    Omega = None if Omega is None else _xp.operand(Omega, "Omega", A)
    A, path, back = _xp.prepare(A, backend=backend)
    m, n = A.shape[-2:]
    k = check_rank(rank, "rank", min(m, n))
    oversample = check_nonnegative_int(oversample, "oversample")
    n_iter = _check_power(n_iter, normalizer)
    check_choice(transpose, "transpose", ("auto", True, False))
    flip = (m < n) if transpose == "auto" else bool(transpose)
    M = _xp.mT(A) if flip else A
    l = min(k + oversample, min(m, n))
    Q = _range_finder(M, n_iter, normalizer,
                      _test_matrix(M, M.shape[-1], l, Omega, seed, path), path,
                      _sketch_dtype(sketch_dtype, path))
    if path == "torch":
        Uh, s, Vt = _xp.svd(_xp.mT(Q) @ M)
    else:
        import scipy.linalg as sla

        B = _matmul_fortran(Q.T, M)
        Uh, s, Vt = sla.svd(B, full_matrices=False, overwrite_a=True, check_finite=False)
    U = Q @ Uh[..., :, :k]
    s, Vt = s[..., :k], Vt[..., :k, :]
    if flip:
        U, Vt = _xp.mT(Vt), _xp.mT(U)
    return back(TruncatedSVD(U, s, Vt))
