r"""Oblivious sketches ``S A`` that compress the rows of ``A`` (m×n) to ``d`` rows.

Three sketching matrices ``S`` (d×m), each with :math:`\mathbb{E}[S^\top S] = I_m`, so that
:math:`\mathbb{E}\|S A x\|^2 = \|A x\|^2` for every ``x``:

- Gaussian: :math:`S_{ij} \sim \mathcal{N}(0, 1/d)`; costs :math:`O(dmn)`;
- SRHT (subsampled randomized Hadamard transform): :math:`S = \sqrt{1/d}\, R H D`, with ``D``
  random signs, ``H`` the ±1 Walsh–Hadamard matrix of order :math:`2^p \ge m` (``A`` padded
  with zero rows) and ``R`` a uniform choice of ``d`` distinct rows; :math:`O(mn\log m)`
  with the fast Walsh–Hadamard transform;
- CountSketch: each row ``i`` of ``A`` is added, with a random sign, to one random bucket
  ``h(i)`` of the ``d`` output rows; :math:`O(\operatorname{nnz}(A))`.

The random draws come from NumPy's generator for ``seed`` on every backend, so the NumPy,
Numba and torch paths apply the same ``S``. The torch path accepts a batch ``(..., m, n)``
(one ``S`` for the whole batch) and runs on the input's device.
"""

from __future__ import annotations

import math

import numpy as np

from refimpl import _xp
from refimpl._typing import ArrayT
from refimpl._validation import check_positive_int
from refimpl.seeding import SeedLike, as_generator


def gaussian_sketch(A: ArrayT, d: int, *, seed: SeedLike = None,
                    backend: str = "auto") -> ArrayT:
    r"""Gaussian sketch :math:`S A` with :math:`S_{ij} \sim \mathcal{N}(0, 1/d)`, ``S`` d×m.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path share one ``S``).
    d : int
        Rows of the sketch (``>= 1``).
    seed : int or numpy.random.Generator, optional
        Draws ``S`` (with NumPy, on every path).
    backend : {"auto", "numpy", "torch"}
        Where ``S A`` is multiplied.

    Returns
    -------
    array or tensor
        ``S A`` (..., d, n), the input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If ``d`` is out of range or ``A`` is empty or not finite.
    TypeError
        If ``A`` is not a real floating-point array or ``d`` not an integer.
    """
    A, path, back = _xp.prepare(A, backend=backend)
    d = check_positive_int(d, "d")
    S = as_generator(seed).standard_normal((d, A.shape[-2])) / math.sqrt(d)
    return back(_xp.to_path(S.astype(_xp.float_dtype(A)), path, like=A) @ A)


def _fwht_numpy(X):
    """Unnormalised Walsh–Hadamard transform along axis -2 (length a power of two)."""
    *batch, m, n = X.shape
    h = 1
    while h < m:
        Y = X.reshape(*batch, m // (2 * h), 2, h, n)
        a, b = Y[..., 0, :, :], Y[..., 1, :, :]
        X = np.stack((a + b, a - b), axis=-3).reshape(*batch, m, n)
        h *= 2
    return X


def _fwht_torch(X):
    import torch

    *batch, m, n = X.shape
    h = 1
    while h < m:
        Y = X.reshape(*batch, m // (2 * h), 2, h, n)
        a, b = Y[..., 0, :, :], Y[..., 1, :, :]
        X = torch.stack((a + b, a - b), dim=-3).reshape(*batch, m, n)
        h *= 2
    return X


def fwht(X: ArrayT, *, backend: str = "auto") -> ArrayT:
    r"""Unnormalised fast Walsh–Hadamard transform ``H X`` along the rows of ``X``.

    ``X`` has ``2^p`` rows; ``H`` is the Sylvester–Hadamard matrix with ±1 entries
    (``H H = 2^p I``). Costs :math:`O(2^p p\, n)` instead of :math:`O(4^p n)`.

    Parameters
    ----------
    X : (2^p, n) array or (..., 2^p, n) tensor
        Real floating-point matrix (batches on the torch path).
    backend : {"auto", "numpy", "numba", "torch"}
        ``"auto"`` runs the Numba kernel for NumPy input and torch for tensors.

    Returns
    -------
    array or tensor
        ``H X``, the input's array kind, device and dtype.

    Raises
    ------
    ValueError
        If the number of rows is not a power of two, or ``X`` is empty or not finite.
    TypeError
        If ``X`` is not a real floating-point array.
    """
    X, path, back = _xp.prepare(X, "X", backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba")
    m = X.shape[-2]
    if m & (m - 1):
        raise ValueError(f"X must have a power-of-two number of rows; got {m}")
    if path == "torch":
        return back(_fwht_torch(X))
    if path == "numba":
        from refimpl.sketch._sketch_numba import fwht_rows

        return back(fwht_rows(np.array(X, dtype=_xp.float_dtype(X), order="C")))
    return back(_fwht_numpy(X))


def srht(A: ArrayT, d: int, *, seed: SeedLike = None, backend: str = "auto") -> ArrayT:
    r"""Subsampled randomized Hadamard transform :math:`\sqrt{1/d}\,R H D A` (``d`` rows).

    ``A`` is padded with zero rows to :math:`2^p \ge m`; ``d`` must not exceed :math:`2^p`.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path share one ``S``).
    d : int
        Rows of the sketch, ``1 <= d <= 2^p``.
    seed : int or numpy.random.Generator, optional
        Draws the signs ``D`` and the rows ``R`` (with NumPy, on every path).
    backend : {"auto", "numpy", "numba", "torch"}
        The Walsh–Hadamard transform: vectorised NumPy, the Numba kernel (default for
        NumPy input) or torch.

    Returns
    -------
    array or tensor
        ``S A`` (..., d, n) as the input's kind, device and dtype; raises as
        :func:`gaussian_sketch`.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba")
    d = check_positive_int(d, "d")
    m = A.shape[-2]
    p2 = 1 << max(0, (m - 1).bit_length())
    if d > p2:
        raise ValueError(f"d={d} exceeds the padded row count 2^p={p2} of A")
    rng = as_generator(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    rows = np.sort(rng.choice(p2, size=d, replace=False))
    if path == "torch":
        import torch

        s = _xp.to_path(signs, path, like=A)
        X = torch.zeros((*A.shape[:-2], p2, A.shape[-1]), dtype=A.dtype, device=A.device)
        X[..., :m, :] = A * s[:, None]
        out = _fwht_torch(X)[..., _xp.to_path(rows, path, like=A), :]
    else:
        X = np.zeros((p2, A.shape[-1]), dtype=_xp.float_dtype(A))
        np.multiply(A, signs[:, None], out=X[:m])
        if path == "numba":
            from refimpl.sketch._sketch_numba import fwht_rows

            out = fwht_rows(X)[rows]
        else:
            out = _fwht_numpy(X)[rows]
    return back(out / math.sqrt(d))


def countsketch(A: ArrayT, d: int, *, seed: SeedLike = None, backend: str = "auto") -> ArrayT:
    r"""CountSketch :math:`S A`: row ``i`` of ``A`` times a random sign goes to bucket ``h(i)``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
        Real floating-point matrix (batches on the torch path share one ``S``).
    d : int
        Number of buckets, the rows of the sketch (``>= 1``).
    seed : int or numpy.random.Generator, optional
        Draws the buckets ``h`` and the signs (with NumPy, on every path).
    backend : {"auto", "numpy", "numba", "torch"}
        ``np.add.at``, the Numba kernel (default for NumPy input) or torch's ``index_add_``.

    Returns
    -------
    array or tensor
        ``S A`` (..., d, n) as the input's kind, device and dtype; raises as :func:`srht`.
    """
    A, path, back = _xp.prepare(A, backend=backend, paths=("numpy", "numba", "torch"),
                                prefer="numba")
    d = check_positive_int(d, "d")
    m = A.shape[-2]
    rng = as_generator(seed)
    buckets = rng.integers(0, d, size=m)
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    dt = _xp.float_dtype(A)
    if path == "torch":
        import torch

        s = _xp.to_path(signs, path, like=A)
        out = torch.zeros((*A.shape[:-2], d, A.shape[-1]), dtype=A.dtype, device=A.device)
        out.index_add_(-2, _xp.to_path(buckets, path, like=A),  # type: ignore[arg-type]  # torch
                       A * s[:, None])
    elif path == "numba":
        from refimpl.sketch._sketch_numba import countsketch_rows

        out = countsketch_rows(np.ascontiguousarray(A, dtype=dt), buckets, signs.astype(dt), d)
    else:
        out = np.zeros((d, A.shape[-1]), dtype=dt)
        np.add.at(out, buckets, A * signs[:, None])
    return back(out)
