r"""Classical factorizations rebuilt as meta-factorizations.

Each function chooses the column factor ``F``, the row factor ``H`` and the test matrices
``B``, ``D`` that turn :func:`~refimpl.meta.meta_factorize` into a known decomposition, and
returns it together with the :class:`~refimpl.meta.MetaFactorization` it came from:

=====================  =====================================  =================================
instance               F, H                                   B, D
=====================  =====================================  =================================
CPQR                   Q_k, P R_kᵀ (pivoted QR)               F, H
SVD                    orthonormal bases of range A, Aᵀ       F, H; then the SVD of the k×k G
UTV / ULV              orthonormal bases (CPQR)               F, H; G triangular by construction
generalized Nyström    A Ω, Aᵀ Ψ (Gaussian sketches)          Ψ, Ω
CUR (optimal U)        C = A[:, J], Rᵀ = A[I, :]ᵀ             F, H          → U = C⁺ A R⁺
CUR (skeleton)         C, Rᵀ                                  selectors S_I, S_J → U = A[I, J]⁻¹
Moore–Penrose          full-rank A = B D (from CPQR)          A⁺ = Dᵀ (Bᵀ A Dᵀ)⁻¹ Bᵀ
=====================  =====================================  =================================

All accept a NumPy array or a torch tensor (batched, any device); ``backend`` chooses the
pivoted-QR kernel (``"numba"`` by default for NumPy input) or moves the whole computation to
torch (``backend="torch"``), returning the input's kind.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._validation import check_array, check_rank
from refimpl.backend import is_torch_tensor, resolve_backend
from refimpl.linalg import cpqr
from refimpl.meta.core import MetaFactorization, meta_factorize
from refimpl.seeding import as_generator

_PATHS = ("numpy", "numba", "torch")


def _prepare(A, k, backend, *, batch_ok=True):
    """Validate A and k, pick the path, and move A to the array kind of that path."""
    A = check_array(A, "A", batch=is_torch_tensor(A) and batch_ok, ndim=2)
    m, n = A.shape[-2:]
    k = min(m, n) if k is None else check_rank(k, "k", min(m, n))
    path = resolve_backend(backend, A, available=_PATHS, prefer="numba")
    return _xp.as_path(A, path), k, path


def _back(result, A_in):
    """Return every array field of a result as the kind of the caller's input."""
    return type(result)(*(_xp.like_input(v, A_in) if not isinstance(v, MetaFactorization)
                          else MetaFactorization(*(_xp.like_input(x, A_in) for x in v))
                          for v in result))


def _pivot_row_factor(R, perm):
    """H = P Rᵀ (n×k) from A P = Q R, so that A ≈ Q Hᵀ."""
    if is_torch_tensor(R):
        import torch

        inv = torch.argsort(perm, dim=-1)
        return _xp.mT(torch.take_along_dim(R, inv.unsqueeze(-2).expand_as(R), dim=-1))
    return _xp.mT(R[..., np.argsort(perm)])


class CPQRMeta(NamedTuple):
    Q: Any
    R: Any
    perm: Any
    meta: MetaFactorization


def cpqr_meta(A, k: int | None = None, *, backend: str = "auto") -> CPQRMeta:
    """Column-pivoted QR as a meta-factorization: ``F = Q_k``, ``H = P R_kᵀ``, ``B = F, D = H``.

    ``meta.reconstruct()`` equals ``Q_k R_k Pᵀ`` (``= Q_k Q_kᵀ A``), the rank-k pivoted-QR
    approximation, and ``meta.G`` is the identity up to rounding.
    """
    A_in = A
    A, k, path = _prepare(A, k, backend)
    Q, R, perm = cpqr(A, k, backend=path)
    meta = meta_factorize(A, Q, _pivot_row_factor(R, perm))
    return _back(CPQRMeta(Q, R, perm, meta), A_in)


class SVDMeta(NamedTuple):
    U: Any
    s: Any
    Vt: Any
    meta: MetaFactorization

    def reconstruct(self):
        return (self.U * self.s[..., None, :]) @ self.Vt


def svd_meta(A, k: int | None = None, *, backend: str = "auto") -> SVDMeta:
    r"""SVD from meta-factorization: orthonormal bases, then the SVD of the small core.

    ``F`` is the ``Q`` of pivoted QR of A (k columns) and ``H`` that of Aᵀ; the core
    ``G = Fᵀ A H`` (k×k) is factorized as ``G = U_G Σ V_Gᵀ`` and ``U = F U_G``,
    ``V = H V_G``. With ``k = rank(A)`` this is A's exact SVD. With a smaller k it is the SVD
    of ``(F Fᵀ) A (H Hᵀ)``: close to, but not, the truncated SVD (see chapter 01).
    """
    A_in = A
    A, k, path = _prepare(A, k, backend)
    F = cpqr(A, k, backend=path).Q
    H = cpqr(_xp.mT(A), k, backend=path).Q
    meta = meta_factorize(A, F, H)
    Ug, s, Vgt = _xp.svd(meta.G)
    return _back(SVDMeta(F @ Ug, s, Vgt @ _xp.mT(H), meta), A_in)


class UTV(NamedTuple):
    """``A ≈ U T Vᵀ`` with orthonormal U, V and triangular T."""

    U: Any
    T: Any
    V: Any
    meta: MetaFactorization

    def reconstruct(self):
        return self.U @ self.T @ _xp.mT(self.V)


def utv(A, k: int | None = None, *, backend: str = "auto") -> UTV:
    r"""Rank-revealing URV (upper-triangular middle factor) as a meta-factorization.

    ``H`` = the orthonormal ``Q`` of pivoted QR of Aᵀ (an approximate row basis); the
    column factor is then chosen from the QR of ``A H`` itself, ``A H = F T``, so that the
    core ``G = Fᵀ A H = T`` comes out upper triangular. ``|diag(T)|`` tracks the singular
    values of A as well as pivoted QR's ``|diag(R)|`` does.
    """
    A_in = A
    A, k, path = _prepare(A, k, backend)
    H = cpqr(_xp.mT(A), k, backend=path).Q
    F, _ = _xp.qr(A @ H)
    meta = meta_factorize(A, F, H)
    # G = Fᵀ A H is triangular in exact arithmetic; drop the rounding below the diagonal.
    T = _triu(meta.G)
    return _back(UTV(F, T, H, meta), A_in)


def ulv(A, k: int | None = None, *, backend: str = "auto") -> UTV:
    r"""Rank-revealing ULV (lower-triangular middle factor) as a meta-factorization.

    ``F`` = the ``Q`` of pivoted QR of A; the row factor comes from the QR of
    ``Aᵀ F = H Lᵀ``, so that ``G = Fᵀ A H = L`` is lower triangular.
    """
    A_in = A
    A, k, path = _prepare(A, k, backend)
    F = cpqr(A, k, backend=path).Q
    H, _ = _xp.qr(_xp.mT(A) @ F)
    meta = meta_factorize(A, F, H)
    L = _xp.mT(_triu(_xp.mT(meta.G)))
    return _back(UTV(F, L, H, meta), A_in)


def _triu(M):
    if is_torch_tensor(M):
        import torch

        return torch.triu(M)
    return np.triu(M)


class Nystrom(NamedTuple):
    """Generalized Nyström: ``A ≈ (A Ω) (Ψᵀ A Ω)⁺ (Ψᵀ A)``."""

    AOmega: Any
    core: Any
    PsiA: Any
    meta: MetaFactorization

    def reconstruct(self):
        return self.AOmega @ self.core @ self.PsiA


def generalized_nystrom(A, k: int, *, oversample: float = 1.5, rcond: float | None = None,
                        seed=None, backend: str = "auto") -> Nystrom:
    r"""Generalized Nyström approximation (Nakatsukasa, 2020) as a meta-factorization.

    With Gaussian sketches Ω (n×k) and Ψ (m×l), ``l = ceil(oversample·k)``, take
    ``F = A Ω``, ``H = Aᵀ Ψ`` and the test matrices ``B = Ψ``, ``D = Ω``. The core
    ``G = Yᵀ A X`` collapses to :math:`(\Psi^\top A \Omega)^+`, so

    .. math:: A \approx A\Omega\,(\Psi^\top A \Omega)^+\,\Psi^\top A .

    Oversampling the left sketch (``l > k``) is what keeps the pseudoinverse well posed;
    ``rcond`` truncates the small singular values of the l×k core (the stabilised form).
    The sketches are drawn from NumPy's generator for ``seed``, so every backend sees the
    same Ω and Ψ.
    """
    A_in = A
    A, k, _ = _prepare(A, k, backend)
    if not (isinstance(oversample, int | float) and oversample >= 1):
        raise ValueError(f"oversample must be a number >= 1; got {oversample!r}")
    m, n = A.shape[-2:]
    l = min(m, max(k, math.ceil(oversample * k)))
    rng = as_generator(seed)
    batch = tuple(A.shape[:-2])
    Omega = _xp.like_input(rng.standard_normal((*batch, n, k)).astype(_np_dtype(A)), A)
    Psi = _xp.like_input(rng.standard_normal((*batch, m, l)).astype(_np_dtype(A)), A)
    AOmega = A @ Omega
    PsiA = _xp.mT(Psi) @ A
    meta = meta_factorize(A, AOmega, _xp.mT(PsiA), B=Psi, D=Omega, method="pinv",
                          rcond=rcond)
    core = _xp.pinv(_xp.mT(Psi) @ AOmega, rtol=rcond)
    return _back(Nystrom(AOmega, core, PsiA, meta), A_in)


def _np_dtype(A):
    return np.float32 if str(A.dtype).endswith("float32") else np.float64


class CUR(NamedTuple):
    """``A ≈ C U R`` with ``C = A[:, cols]`` and ``R = A[rows, :]``."""

    C: Any
    U: Any
    R: Any
    rows: Any
    cols: Any
    meta: MetaFactorization

    def reconstruct(self):
        return self.C @ self.U @ self.R


def cur(A, k: int, *, u: str = "optimal", rows=None, cols=None,
        backend: str = "auto") -> CUR:
    r"""CUR decomposition as a meta-factorization with ``F = C``, ``H = Rᵀ``.

    Parameters
    ----------
    A : (m, n) array or (..., m, n) tensor
    k : int
        Number of rows and of columns.
    u : {"optimal", "skeleton"}
        ``"optimal"``: test matrices ``B = C``, ``D = Rᵀ`` give the Frobenius-optimal middle
        factor :math:`U = C^+ A R^+`. ``"skeleton"``: selector test matrices ``B = S_I``,
        ``D = S_J`` give :math:`U = A[I, J]^{-1}`, which interpolates A on the chosen rows
        and columns.
    rows, cols : index arrays, optional
        The selections; by default the first k pivots of pivoted QR of Aᵀ (columns of A) and
        of A (rows), as in a QR-based DEIM selection.
    """
    if u not in ("optimal", "skeleton"):
        raise ValueError(f"u must be 'optimal' or 'skeleton'; got {u!r}")
    A_in = A
    A, k, path = _prepare(A, k, backend)
    m, n = A.shape[-2:]
    if cols is None:
        cols = cpqr(A, k, backend=path).perm[..., :k]
    else:
        cols = _check_index(cols, "cols", n, k, A)
    if rows is None:
        rows = cpqr(_xp.mT(A), k, backend=path).perm[..., :k]
    else:
        rows = _check_index(rows, "rows", m, k, A)
    C = _xp.take_cols(A, cols)
    R = _xp.take_rows(A, rows)
    if u == "optimal":
        meta = meta_factorize(A, C, _xp.mT(R), method="pinv")
    else:
        meta = meta_factorize(A, C, _xp.mT(R), B=_xp.selector(m, rows, A),
                              D=_xp.selector(n, cols, A), method="solve")
    return _back(CUR(C, meta.G, R, rows, cols, meta), A_in)


def _check_index(idx, name, size, k, A):
    arr = _xp.to_numpy(idx)
    if arr.shape[-1:] != (k,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold {k} integer indices; got shape {arr.shape} "
                         f"and dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= size:
        raise ValueError(f"{name} must index 0..{size - 1}; got values {arr.min()}..{arr.max()}")
    if any(len(set(r)) != k for r in arr.reshape(-1, k).tolist()):
        raise ValueError(f"{name} must not repeat an index")
    if is_torch_tensor(A):
        import torch

        return torch.as_tensor(arr, device=A.device)
    return arr


def numerical_rank(qr, rtol: float | None = None) -> int:
    """Numerical rank from pivoted QR: the number of ``|R_ii| > rtol·|R_11|``.

    The default ``rtol = max(m, n)·eps`` matches ``numpy.linalg.matrix_rank``'s spirit with
    R's diagonal standing in for the singular values. A batch must share one rank.
    """
    m, n = qr.Q.shape[-2], qr.R.shape[-1]
    tol = max(m, n) * _xp.eps(qr.R) if rtol is None else rtol
    d = np.abs(_xp.to_numpy(qr.R).diagonal(0, -2, -1))
    ranks = np.sum(d > tol * d[..., :1], axis=-1)
    if np.unique(ranks).size != 1:
        raise ValueError(f"matrices of the batch have different numerical ranks "
                         f"{sorted(set(ranks.ravel().tolist()))}; pass the rank explicitly")
    return max(1, int(np.ravel(ranks)[0]))


class PinvMeta(NamedTuple):
    pinv: Any
    rank: int
    meta: MetaFactorization


def pinv_meta(A, *, rank: int | None = None, rtol: float | None = None,
              backend: str = "auto") -> PinvMeta:
    r"""The Moore–Penrose pseudoinverse from a full-rank factorization ``A = B D``.

    Pivoted QR gives ``A = B D`` with ``B = Q_r`` (m×r) and ``D = R_r Pᵀ`` (r×n) for the
    numerical rank r (the number of ``|R_ii| > rtol·|R_11|``, default
    ``rtol = max(m, n)·eps``); then

    .. math:: A^+ = D^\top (B^\top A D^\top)^{-1} B^\top ,

    computed as ``X G⁻¹ Yᵀ`` from the meta-factorization of A with ``F = B``, ``H = Dᵀ``
    (whose core G is the r×r identity up to rounding). On the torch path every
    matrix of a batch must have the same numerical rank (or pass ``rank``).
    """
    A_in = A
    A, _, path = _prepare(A, None, backend)
    m, n = A.shape[-2:]
    qr = cpqr(A, backend=path)
    rank = numerical_rank(qr, rtol) if rank is None else check_rank(rank, "rank", min(m, n))
    Bf = qr.Q[..., :, :rank]
    Df = _xp.mT(_pivot_row_factor(qr.R[..., :rank, :], qr.perm))  # r × n
    # The meta-factorization of A with F = B, H = Dᵀ has core G = I_r (to rounding) and
    # A⁺ = X G⁻¹ Yᵀ, which expands to Dᵀ (Bᵀ A Dᵀ)⁻¹ Bᵀ.
    meta = meta_factorize(A, Bf, _xp.mT(Df), method="solve")
    P = meta.X @ _xp.solve(meta.G, _xp.mT(meta.Y))
    return _back(PinvMeta(P, rank, meta), A_in)
