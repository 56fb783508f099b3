"""Test matrices with a prescribed spectrum, for tests, notebooks and benchmarks."""

from __future__ import annotations

import numpy as np

from refimpl._typing import ArrayLike, DTypeLike, FloatArray
from refimpl._validation import check_positive, check_positive_int, check_rank
from refimpl.seeding import SeedLike, as_generator

__all__ = ["geometric_spectrum", "low_rank_matrix", "matrix_with_spectrum", "random_orthonormal"]


def random_orthonormal(m: int, k: int, *, seed: SeedLike = None) -> FloatArray:
    """An m×k matrix with Haar-distributed orthonormal columns (QR of a Gaussian, sign-fixed).

    Parameters
    ----------
    m : int
        Rows, ``>= 1``.
    k : int
        Columns, ``1 <= k <= m``.
    seed : int or numpy.random.Generator, optional
        Draws the Gaussian matrix.

    Returns
    -------
    numpy.ndarray
        ``Q`` (m, k), float64, with ``QᵀQ = I``.
    """
    m = check_positive_int(m, "m")
    k = check_rank(k, "k", m, what="m")
    rng = as_generator(seed)
    Q, R = np.linalg.qr(rng.standard_normal((m, k)))
    return Q * np.where(np.diagonal(R) < 0, -1.0, 1.0)


def matrix_with_spectrum(m: int, n: int, s: ArrayLike, *, seed: SeedLike = None,
                         dtype: DTypeLike = np.float64) -> FloatArray:
    """``U diag(s) Vᵀ`` with random orthonormal U (m×r), V (n×r), r = len(s).

    Parameters
    ----------
    m, n : int
        The shape.
    s : sequence of float
        The non-zero singular values (finite, non-negative, at most ``min(m, n)`` of them).
    seed : int or numpy.random.Generator, optional
        Draws U and V.
    dtype : numpy dtype
        Of the result.

    Returns
    -------
    numpy.ndarray
        The m×n matrix.

    Raises
    ------
    ValueError
        If ``s`` is empty, not 1-D, negative or not finite, or longer than ``min(m, n)``.
    """
    s = np.asarray(s, dtype=float)
    if s.ndim != 1 or s.size == 0 or np.any(s < 0) or not np.all(np.isfinite(s)):
        raise ValueError("s must be a non-empty 1-D array of finite, non-negative values")
    check_rank(s.size, "len(s)", min(m, n))
    rng = as_generator(seed)
    U = random_orthonormal(m, s.size, seed=rng)
    V = random_orthonormal(n, s.size, seed=rng)
    return ((U * s) @ V.T).astype(dtype)


def geometric_spectrum(r: int, cond: float) -> FloatArray:
    """``r`` singular values decaying geometrically from 1 to ``1/cond``.

    Parameters
    ----------
    r : int
        How many, ``>= 1``.
    cond : float
        The ratio of the largest to the smallest, ``>= 1``.

    Returns
    -------
    numpy.ndarray
        ``r`` values, non-increasing.
    """
    r = check_positive_int(r, "r")
    cond = check_positive(cond, "cond")
    if cond < 1:
        raise ValueError(f"cond must be >= 1; got {cond}")
    return np.logspace(0, -np.log10(cond), r) if r > 1 else np.ones(1)


def low_rank_matrix(m: int, n: int, rank: int, *, cond: float = 10.0, seed: SeedLike = None,
                    dtype: DTypeLike = np.float64) -> FloatArray:
    """An m×n matrix of exact rank ``rank`` whose non-zero singular values span ``cond``.

    Parameters
    ----------
    m, n : int
        The shape.
    rank : int
        Its rank, ``1 <= rank <= min(m, n)``.
    cond, seed, dtype
        As in :func:`geometric_spectrum` and :func:`matrix_with_spectrum`.

    Returns
    -------
    numpy.ndarray
        The m×n matrix.
    """
    return matrix_with_spectrum(m, n, geometric_spectrum(rank, cond), seed=seed, dtype=dtype)
