r"""Perturb-then-diagonalize (Yu, Nigmetov, Morozov, Mahoney & Erichson, ICLR 2024).

A non-normal matrix such as the HiPPO-LegS state matrix is diagonalizable in exact
arithmetic, but its eigenvector matrix is so ill-conditioned that
:math:`V \operatorname{diag}(w) V^{-1}` computed in floating point need not resemble
:math:`A` at all. Perturbing first,

.. math:: \tilde A = A + E, \qquad \|E\|_2 = \varepsilon \|A\|_2, \qquad
          \tilde A = \tilde V \operatorname{diag}(\tilde w) \tilde V^{-1},

gives an eigenbasis whose condition number is bounded in terms of :math:`\varepsilon`
(pseudospectral theory: Davies 2007; Banks et al. 2020) while the factorization stays an
:math:`O(\varepsilon)` backward approximation of :math:`A`. Our reading: :math:`E` is a
Gaussian matrix rescaled to spectral norm :math:`\varepsilon\|A\|_2`, and the eigensolver is
LAPACK's ``xGEEV`` through :func:`numpy.linalg.eig`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import check_positive, check_square
from refimpl.seeding import SeedLike, as_generator


class Eig(NamedTuple):
    """``A ≈ V @ diag(w) @ inv(V)`` (complex in general).

    Attributes
    ----------
    w : (n,) array or tensor
        Eigenvalues: complex, or real when all of them are (as :func:`numpy.linalg.eig`
        returns them).
    V : (n, n) array or tensor
        Eigenvectors, column ``i`` for ``w[i]``, each of unit 2-norm (complex or real like
        ``w``).
    """

    w: Any
    V: Any

    def reconstruct(self) -> Array:
        """``V diag(w) V⁻¹``."""
        return (self.V * self.w) @ _xp.linalg(self.V).inv(self.V)


def perturb_then_diagonalize(A: Array, eps: float = 1e-6, *, seed: SeedLike = None) -> Eig:
    """Eigendecomposition of ``A + E`` with a random ``E`` of spectral norm ``eps * ‖A‖₂``.

    Parameters
    ----------
    A : (n, n) array or torch tensor
        Real square matrix (a tensor is computed on the CPU with NumPy and the result
        returned as tensors on its device).
    eps : float
        Relative size of the perturbation, ``0 <= eps < 1`` (``0`` diagonalizes ``A`` itself).
    seed : int or numpy.random.Generator
        Source of the Gaussian perturbation.

    Returns
    -------
    Eig
        ``w`` (n,) and ``V`` (n, n) with ``A + E = V diag(w) V⁻¹``.

    Raises
    ------
    TypeError
        If ``A`` is not a real floating-point array or ``eps`` not a real number.
    ValueError
        If ``A`` is empty, not finite or not square, or ``eps`` is outside ``[0, 1)``.
    """
    A, _, back = _xp.prepare(A, paths=("numpy",))
    check_square(A, "A")
    eps = check_positive(eps, "eps", allow_zero=True)
    if eps >= 1:
        raise ValueError(f"eps must be in [0, 1); got {eps}")
    G = as_generator(seed).standard_normal(A.shape)
    E = (eps * np.linalg.norm(A, 2) / np.linalg.norm(G, 2)) * G
    w, V = np.linalg.eig(A + E)
    return back(Eig(w, V))
