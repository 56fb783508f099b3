"""Test matrices for tests/linalg: random, rank-deficient and ill-conditioned, float32/float64."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from refimpl.matrices import (
    geometric_spectrum,
    low_rank_matrix,
    matrix_with_spectrum,
    random_orthonormal,
)

KINDS = ("random", "rank_deficient", "ill_conditioned")
DTYPES = (np.float64, np.float32)


def make_matrix(m, n, kind="random", seed=0, dtype=np.float64):
    k = min(m, n)
    if kind == "random":
        return np.random.default_rng(seed).standard_normal((m, n)).astype(dtype)
    if kind == "rank_deficient":
        return low_rank_matrix(m, n, max(1, k // 2), seed=seed, dtype=dtype)
    if kind == "ill_conditioned":
        cond = 1e10 if dtype == np.float64 else 1e5
        return matrix_with_spectrum(m, n, geometric_spectrum(k, cond), seed=seed, dtype=dtype)
    raise ValueError(kind)


def make_spd(n, cond=1e3, seed=0, dtype=np.float64):
    Q = random_orthonormal(n, n, seed=seed)
    A = (Q * geometric_spectrum(n, cond)) @ Q.T
    return ((A + A.T) / 2).astype(dtype)


def tol(dtype, scale=1.0):
    """Absolute tolerance for backward errors of size O(n ε ‖A‖)."""
    return scale * (1e-10 if dtype == np.float64 else 2e-4)


@st.composite
def matrices(draw, *, min_dim=1, max_dim=10, shape="any", kinds=KINDS, dtypes=DTYPES):
    """(A, kind, dtype) with shape "any", "tall" (m >= n) or "square"."""
    m = draw(st.integers(min_dim, max_dim))
    if shape == "square":
        n = m
    elif shape == "tall":
        n = draw(st.integers(min_dim, m))
    else:
        n = draw(st.integers(min_dim, max_dim))
    kind = draw(st.sampled_from(kinds))
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2**31 - 1))
    return make_matrix(m, n, kind, seed, dtype), kind, dtype


def torch_batch(b=3, m=12, n=8, seed=0):
    """A (b, m, n) float64 CPU tensor of standard normal entries (for the GPU parity tests)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, m, n, dtype=torch.float64, generator=g)
