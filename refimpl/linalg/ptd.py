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

from refimpl._validation import check_array
from refimpl.seeding import SeedLike, as_generator


class Eig(NamedTuple):
    """``A ≈ V @ diag(w) @ inv(V)`` (complex in general)."""

    w: Any
    V: Any

    def reconstruct(self):
        return (self.V * self.w) @ np.linalg.inv(self.V)


def perturb_then_diagonalize(A, eps: float = 1e-6, *, seed: SeedLike = None) -> Eig:
    """Eigendecomposition of ``A + E`` with a random ``E`` of spectral norm ``eps * ‖A‖₂``.

    Parameters
    ----------
    A : (n, n) real array
    eps : float
        Relative size of the perturbation, ``0 <= eps < 1`` (``0`` diagonalizes ``A`` itself).
    seed : int or numpy.random.Generator
    """
    A = check_array(A, "A", allow_torch=False)
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"A must be square; got shape {A.shape}")
    if not 0 <= eps < 1:
        raise ValueError(f"eps must be in [0, 1); got {eps}")
    G = as_generator(seed).standard_normal(A.shape)
    E = (eps * np.linalg.norm(A, 2) / np.linalg.norm(G, 2)) * G
    w, V = np.linalg.eig(A + E)
    return Eig(w, V)
