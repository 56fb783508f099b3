"""Chapter 02: classical decompositions as one family.

- :mod:`refimpl.linalg.qr`: Householder QR (:func:`householder_qr`) and QR with column
  pivoting (:func:`cpqr`, the kernel of chapter 01's CPQR meta-factorization);
- :mod:`refimpl.linalg.jacobi`: one-sided Jacobi SVD and the symmetric Jacobi eigensolver;
- :mod:`refimpl.linalg.lu`: LU with partial pivoting and Cholesky;
- :mod:`refimpl.linalg.svd`: :class:`TruncatedSVD`, the one SVD result type of the package,
  and the truncated SVD with its Eckart–Young–Mirsky error (:func:`truncated_svd`);
- :mod:`refimpl.linalg.polar`: polar decomposition (SVD, Newton, Newton–Schulz);
- :mod:`refimpl.linalg.ptd`: perturb-then-diagonalize for non-normal matrices (Yu et al.);
- :mod:`refimpl.linalg.unified`: the unified pivoted loop (Jacobi / Gram–Schmidt /
  Cholesky with uniformly random pivots, Detherage & Shah);
- :mod:`refimpl.linalg.sqrtm`: the fast differentiable matrix square root (Taylor and Padé
  forward, Lyapunov backward; :class:`MatrixSqrt` is built on first access, importing torch).

Iterative solvers (:func:`jacobi_svd`, :func:`jacobi_eigh`, :func:`polar`,
:func:`unified_pivoted`, :func:`solve_lyapunov`) report with :class:`refimpl.results.Info`
when called with ``return_info=True``.
"""

from refimpl.linalg.jacobi import Eigh, jacobi_eigh, jacobi_svd
from refimpl.linalg.lu import LU, Cholesky, cholesky, lu
from refimpl.linalg.polar import Polar, polar
from refimpl.linalg.ptd import Eig, perturb_then_diagonalize
from refimpl.linalg.qr import QR, PivotedQR, cpqr, householder_qr
from refimpl.linalg.sqrtm import (
    solve_lyapunov,
    sqrtm_eigh,
    sqrtm_newton_schulz,
    sqrtm_pade,
    sqrtm_taylor,
)
from refimpl.linalg.svd import TruncatedSVD, truncated_svd
from refimpl.linalg.unified import UnifiedResult, potential, unified_pivoted

__all__ = [
    "LU",
    "QR",
    "Cholesky",
    "Eig",
    "Eigh",
    "MatrixSqrt",
    "PivotedQR",
    "Polar",
    "TruncatedSVD",
    "UnifiedResult",
    "cholesky",
    "cpqr",
    "householder_qr",
    "jacobi_eigh",
    "jacobi_svd",
    "lu",
    "perturb_then_diagonalize",
    "polar",
    "potential",
    "solve_lyapunov",
    "sqrtm_eigh",
    "sqrtm_newton_schulz",
    "sqrtm_pade",
    "sqrtm_taylor",
    "truncated_svd",
    "unified_pivoted",
]


def __getattr__(name: str) -> type:
    if name == "MatrixSqrt":
        from refimpl.linalg.sqrtm import MatrixSqrt

        globals()["MatrixSqrt"] = MatrixSqrt
        return MatrixSqrt
    raise AttributeError(f"module 'refimpl.linalg' has no attribute {name!r}")
