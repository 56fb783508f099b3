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
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.seeding import as_generator

_NORMALIZERS = ("qr", "lu", "none")


class TruncatedSVD(NamedTuple):
    """``A ≈ U diag(s) Vt`` with ``U`` (m×k), ``s`` (k,) non-increasing and ``Vt`` (k×n)."""

    U: Any
    s: Any
    Vt: Any

    def reconstruct(self):
        return (self.U * self.s[..., None, :]) @ self.Vt


def _check_common(n_iter, normalizer):
    if isinstance(n_iter, bool) or not isinstance(n_iter, numbers.Integral) or n_iter < 0:
        raise ValueError(f"n_iter must be a non-negative integer; got {n_iter!r}")
    if normalizer not in _NORMALIZERS:
        raise ValueError(f"normalizer must be one of {_NORMALIZERS}; got {normalizer!r}")


def _test_matrix(A, n, l, Omega, seed):
    """The Gaussian test matrix Ω (n×l), drawn with NumPy so that every path sees the same one."""
    if Omega is None:
        dt = np.float32 if str(A.dtype).endswith("float32") else np.float64
        return _xp.like_input(as_generator(seed).standard_normal((n, l)).astype(dt), A)
    Omega = check_array(Omega, "Omega", ndim=2)
    if tuple(Omega.shape) != (n, l):
        raise ValueError(f"Omega must have shape {(n, l)}; got {tuple(Omega.shape)}")
    Omega = _xp.like_input(Omega, A)
    if is_torch_tensor(A):
        Omega = Omega.to(dtype=A.dtype, device=A.device)
    return Omega


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


def _range_finder(A, l, n_iter, normalizer, Omega):
    """Q (m×l) with orthonormal columns spanning (A Aᵀ)^q A Ω; A and Ω already on the path."""
    if is_torch_tensor(A):
        orth, mm = _orth_torch, (lambda X, Y: X @ Y)
    else:
        orth, mm = _orth_numpy, _matmul_fortran
    AT = _xp.mT(A)
    Y = mm(A, Omega)
    for _ in range(n_iter):
        Y = orth(Y, normalizer)
        Y = orth(mm(AT, Y), normalizer)
        Y = mm(A, Y)
    return orth(Y, "qr")


def _prepare(A, backend):
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    path = resolve_backend(backend, A, available=("numpy", "torch"), prefer="numpy")
    return A, path


def randomized_range_finder(A, size: int, *, n_iter: int = 2, normalizer: str = "qr",
                            Omega=None, seed=None, backend: str = "auto"):
    """Orthonormal ``Q`` (m×size) whose range approximates the range of ``A``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
    size : int
        Number of columns ``l`` of ``Q`` (target rank plus oversampling), ``l <= min(m, n)``.
    n_iter : int
        Power iterations ``q``: the sketch is ``(A Aᵀ)^q A Ω``.
    normalizer : {"qr", "lu", "none"}
        Re-normalisation between the products of a power iteration.
    Omega : (n, size) array, optional
        The test matrix; by default Gaussian from ``seed``.
    """
    A_in = A
    A, path = _prepare(A, backend)
    m, n = A.shape[-2:]
    l = check_rank(size, "size", min(m, n))
    _check_common(n_iter, normalizer)
    A = _xp.as_path(A, path)
    Q = _range_finder(A, l, n_iter, normalizer, _test_matrix(A, n, l, Omega, seed))
    return _xp.like_input(Q, A_in)


def randomized_svd(A, k: int, *, oversample: int = 10, n_iter: int = 2,
                   normalizer: str = "lu", transpose: str | bool = "auto", Omega=None,
                   seed=None, backend: str = "auto") -> TruncatedSVD:
    """Rank-``k`` randomized SVD: range finder with ``k + oversample`` columns, then the SVD
    of the small ``B = Qᵀ A``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
    k : int
        Target rank, ``1 <= k <= min(m, n)``.
    oversample : int
        Extra columns ``p`` (clipped so that ``k + p <= min(m, n)``).
    n_iter, normalizer
        See :func:`randomized_range_finder`.
    transpose : {"auto", True, False}
        Work with ``Aᵀ`` (the sketch then lives in the longer dimension); ``"auto"`` does so
        when ``m < n``.
    Omega : array, optional
        Test matrix of shape ``(n, k + p)`` (``(m, k + p)`` when transposing).
    """
    A_in = A
    A, path = _prepare(A, backend)
    m, n = A.shape[-2:]
    k = check_rank(k, "k", min(m, n))
    if isinstance(oversample, bool) or not isinstance(oversample, numbers.Integral) \
            or oversample < 0:
        raise ValueError(f"oversample must be a non-negative integer; got {oversample!r}")
    _check_common(n_iter, normalizer)
    if transpose not in ("auto", True, False):
        raise ValueError(f"transpose must be 'auto', True or False; got {transpose!r}")
    flip = (m < n) if transpose == "auto" else bool(transpose)
    A = _xp.as_path(A, path)
    M = _xp.mT(A) if flip else A
    l = min(k + oversample, min(m, n))
    Q = _range_finder(M, l, n_iter, normalizer, _test_matrix(M, M.shape[-1], l, Omega, seed))
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
    return TruncatedSVD(*(_xp.like_input(x, A_in) for x in (U, s, Vt)))
