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
from refimpl._validation import check_array, check_rank
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.seeding import as_generator


def _prepare(A, d, backend, available, prefer):
    A = check_array(A, "A", batch=is_torch_tensor(A), ndim=2)
    m = A.shape[-2]
    d = check_rank(d, "d", 10**12, what="the largest supported sketch size")
    path = resolve_backend(backend, A, available=available, prefer=prefer)
    return A, m, d, path


def _float_dtype(A):
    return np.float32 if str(A.dtype).endswith("float32") else np.float64


def gaussian_sketch(A, d: int, *, seed=None, backend: str = "auto"):
    r"""Gaussian sketch :math:`S A` with :math:`S_{ij} \sim \mathcal{N}(0, 1/d)`, ``S`` d×m."""
    A, m, d, path = _prepare(A, d, backend, ("numpy", "torch"), "numpy")
    S = as_generator(seed).standard_normal((d, m)) / math.sqrt(d)
    A_p = _xp.as_path(A, path)
    out = _xp.like_input(S.astype(_float_dtype(A)), A_p) @ A_p
    return _xp.like_input(out, A)


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


def fwht(X, *, backend: str = "auto"):
    """Unnormalised fast Walsh–Hadamard transform ``H X`` along the rows of ``X``.

    ``X`` has ``2^p`` rows; ``H`` is the Sylvester–Hadamard matrix with ±1 entries
    (``H H = 2^p I``). Costs :math:`O(2^p p\\, n)` instead of :math:`O(4^p n)`.
    """
    X = check_array(X, "X", batch=is_torch_tensor(X), ndim=2)
    m = X.shape[-2]
    if m & (m - 1):
        raise ValueError(f"X must have a power-of-two number of rows; got {m}")
    path = resolve_backend(backend, X, available=("numpy", "numba", "torch"), prefer="numba")
    X_p = _xp.as_path(X, path)
    if path == "torch":
        out = _fwht_torch(X_p)
    elif path == "numba":
        from refimpl.sketch._sketch_numba import fwht_rows

        out = fwht_rows(np.array(X_p, dtype=_float_dtype(X_p), order="C"))
    else:
        out = _fwht_numpy(X_p)
    return _xp.like_input(out, X)


def srht(A, d: int, *, seed=None, backend: str = "auto"):
    r"""Subsampled randomized Hadamard transform :math:`\sqrt{1/d}\,R H D A` (``d`` rows).

    ``A`` is padded with zero rows to :math:`2^p \ge m`; ``d`` must not exceed :math:`2^p`.
    """
    A, m, d, path = _prepare(A, d, backend, ("numpy", "numba", "torch"), "numba")
    p2 = 1 << max(0, (m - 1).bit_length())
    if d > p2:
        raise ValueError(f"d={d} exceeds the padded row count 2^p={p2} of A")
    rng = as_generator(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    rows = np.sort(rng.choice(p2, size=d, replace=False))
    A_p = _xp.as_path(A, path)
    if path == "torch":
        import torch

        s = torch.as_tensor(signs, dtype=A_p.dtype, device=A_p.device)
        X = torch.zeros((*A_p.shape[:-2], p2, A_p.shape[-1]), dtype=A_p.dtype,
                        device=A_p.device)
        X[..., :m, :] = A_p * s[:, None]
        out = _fwht_torch(X)[..., torch.as_tensor(rows, device=A_p.device), :]
    else:
        X = np.zeros((p2, A_p.shape[-1]), dtype=_float_dtype(A_p))
        np.multiply(A_p, signs[:, None], out=X[:m])
        if path == "numba":
            from refimpl.sketch._sketch_numba import fwht_rows

            out = fwht_rows(X)[rows]
        else:
            out = _fwht_numpy(X)[rows]
    return _xp.like_input(out / math.sqrt(d), A)


def countsketch(A, d: int, *, seed=None, backend: str = "auto"):
    r"""CountSketch :math:`S A`: row ``i`` of ``A`` times a random sign goes to bucket ``h(i)``."""
    A, m, d, path = _prepare(A, d, backend, ("numpy", "numba", "torch"), "numba")
    rng = as_generator(seed)
    buckets = rng.integers(0, d, size=m)
    signs = rng.choice(np.array([-1.0, 1.0]), size=m)
    A_p = _xp.as_path(A, path)
    if path == "torch":
        import torch

        idx = torch.as_tensor(buckets, device=A_p.device)
        s = torch.as_tensor(signs, dtype=A_p.dtype, device=A_p.device)
        out = torch.zeros((*A_p.shape[:-2], d, A_p.shape[-1]), dtype=A_p.dtype,
                          device=A_p.device)
        out.index_add_(-2, idx, A_p * s[:, None])
    elif path == "numba":
        from refimpl.sketch._sketch_numba import countsketch_rows

        dt = _float_dtype(A_p)
        out = countsketch_rows(np.ascontiguousarray(A_p, dtype=dt), buckets,
                               signs.astype(dt), d)
    else:
        out = np.zeros((d, A_p.shape[-1]), dtype=_float_dtype(A_p))
        np.add.at(out, buckets, A_p * signs[:, None])
    return _xp.like_input(out, A)
