r"""Robust low-rank recovery by the sub-gradient method from a small initialization.

The problem (Ma & Fattahi, 2022; JMLR 2023): recover a positive semidefinite
:math:`M^\star = U^\star U^{\star\top}` (:math:`n \times n`, rank :math:`r`) from linear
measurements :math:`y_i = \langle A_i, M^\star\rangle + s_i`, :math:`i = 1, \dots, m`, where
a fraction of the :math:`s_i` are gross outliers of arbitrary size (and the rest may carry
dense noise), when the rank is not known and is over-estimated. The method minimises the
nonsmooth, nonconvex :math:`\ell_1` loss over an over-parameterised factor
:math:`U \in \mathbb{R}^{n \times r'}`, :math:`r' \ge r`,

.. math:: f(U) = \frac1m \sum_{i=1}^m \big|\langle A_i, UU^\top\rangle - y_i\big|,

by the sub-gradient method (SubGM)

.. math:: U_{t+1} = U_t - \eta_t D_t, \qquad
          D_t = \frac1m \sum_i \operatorname{sign}(\langle A_i, U_tU_t^\top\rangle - y_i)\,
          (A_i + A_i^\top)\, U_t \in \partial f(U_t),

started from a *small* random point :math:`U_0 = \alpha B` and run with geometrically
decaying steps :math:`\eta_t = \eta_0 \rho^t` (the schedule of their analysis). Their
result: with a small enough :math:`\alpha`, SubGM converges to :math:`M^\star` even though
:math:`r' > r` and even with a constant fraction of outliers;
small initialization is what makes the over-parameterisation harmless. Early on the iterate
grows along the leading eigenvectors of :math:`M^\star` (the expected sub-gradient at a small
:math:`U` is close to :math:`-2\sqrt{2/\pi}\, M^\star U / \|M^\star\|_F`, a power iteration),
while its :math:`r' - r` spurious directions stay of the order of :math:`\alpha`; from a large
initialization those directions start large and shrink slowly, so for the same budget of
iterations the error is much larger.

The residuals of all measurements are formed at once (``einsum``) and the sub-gradient as
one sign-weighted sum of the stacked :math:`A_i + A_i^\top`. :func:`gaussian_sensing` draws
a test problem of the paper's kind: symmetric Gaussian :math:`A_i`, a planted
:math:`M^\star`, outliers on a random fraction of the measurements and optional dense noise.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, overload

import numpy as np

from refimpl._typing import ArrayLike, NDArray, SeedLike
from refimpl._validation import (
    check_array,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.results import Info
from refimpl.seeding import as_generator

__all__ = ["SensingProblem", "gaussian_sensing", "l1_loss", "recovery_error",
           "robust_recovery"]


class SensingProblem(NamedTuple):
    r"""A robust matrix-sensing instance :math:`y = \mathcal A(M^\star) + s`.

    Attributes
    ----------
    A : (m, n, n) float64 array
        Symmetric measurement matrices :math:`A_i`.
    y : (m,) float64 array
        Measurements :math:`\langle A_i, M^\star\rangle + s_i`.
    M_star : (n, n) float64 array
        The planted PSD matrix :math:`U^\star U^{\star\top}`.
    U_star : (n, r) float64 array
        Its factor.
    outliers : (m,) bool array
        Which measurements carry a gross outlier.
    """

    A: NDArray[np.float64]
    y: NDArray[np.float64]
    M_star: NDArray[np.float64]
    U_star: NDArray[np.float64]
    outliers: NDArray[np.bool_]


def gaussian_sensing(n: int, rank: int, m: int, *, outlier_fraction: float = 0.0,
                     outlier_scale: float = 10.0, noise: float = 0.0,
                     condition: float = 2.0, seed: SeedLike = None) -> SensingProblem:
    r"""Draw a robust matrix-sensing problem with symmetric Gaussian measurements.

    :math:`A_i = (G_i + G_i^\top)/2` with :math:`G_i` of i.i.d. standard normal entries, so
    that :math:`\langle A_i, M\rangle \sim \mathcal N(0, \|M\|_F^2)` for a symmetric
    :math:`M`. The planted :math:`M^\star = Q\,\mathrm{diag}(\lambda)\,Q^\top` has a random
    orthonormal :math:`Q` (n×r) and eigenvalues evenly spaced from 1 down to
    ``1 / condition``. A random set of ``round(outlier_fraction · m)`` measurements gets
    an outlier :math:`s_i \sim \mathcal N(0, (\text{outlier\_scale}\,\|M^\star\|_F)^2)`;
    every measurement gets dense noise :math:`\mathcal N(0, \text{noise}^2)`.

    Parameters
    ----------
    n : int
        Matrix size.
    rank : int
        Rank :math:`r` of :math:`M^\star`, ``1 <= rank <= n``.
    m : int
        Number of measurements.
    outlier_fraction : float
        Share of corrupted measurements, in ``[0, 1)``.
    outlier_scale : float
        Standard deviation of an outlier, in units of :math:`\|M^\star\|_F` (the standard
        deviation of a clean measurement).
    noise : float
        Standard deviation of the dense Gaussian noise (absolute), ``>= 0``.
    condition : float
        Ratio of the largest to the smallest nonzero eigenvalue of :math:`M^\star`, ``>= 1``.
    seed : int, numpy.random.Generator or None
        Draws everything.

    Returns
    -------
    SensingProblem

    Raises
    ------
    ValueError
        If a size, a fraction or a scale is out of range.
    """
    n = check_positive_int(n, "n")
    rank = check_rank(rank, "rank", n, what="n")
    m = check_positive_int(m, "m")
    outlier_fraction = check_positive(outlier_fraction, "outlier_fraction", allow_zero=True)
    if outlier_fraction >= 1:
        raise ValueError(f"outlier_fraction must lie in [0, 1); got {outlier_fraction!r}")
    outlier_scale = check_positive(outlier_scale, "outlier_scale")
    noise = check_positive(noise, "noise", allow_zero=True)
    condition = check_positive(condition, "condition")
    if condition < 1:
        raise ValueError(f"condition must be >= 1; got {condition!r}")
    rng = as_generator(seed)
    Q = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    lam = np.linspace(1.0, 1.0 / condition, rank)
    U_star = Q * np.sqrt(lam)
    M_star = U_star @ U_star.T
    G = rng.standard_normal((m, n, n))
    A = 0.5 * (G + G.transpose(0, 2, 1))
    y = np.einsum("kij,ij->k", A, M_star)
    bad = np.zeros(m, dtype=bool)
    bad[rng.permutation(m)[:round(outlier_fraction * m)]] = True
    y[bad] += outlier_scale * np.linalg.norm(M_star) * rng.standard_normal(int(bad.sum()))
    if noise > 0:
        y += noise * rng.standard_normal(m)
    return SensingProblem(A, y, M_star, U_star, bad)


def _measure(A: NDArray[np.float64], M: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.einsum("kij,ij->k", A, M)


def _loss_subgradient(A: NDArray[np.float64], S: NDArray[np.float64], y: NDArray[np.float64],
                      U: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
    """``f(U)`` and the sub-gradient ``(1/m) Σ sign(res_i) S_i U`` with ``S_i = A_i + A_iᵀ``."""
    res = _measure(A, U @ U.T) - y
    D = np.tensordot(np.sign(res), S, axes=1) @ U / A.shape[0]
    return float(np.mean(np.abs(res))), D


def l1_loss(A: ArrayLike, y: ArrayLike, U: ArrayLike) -> float:
    r"""The robust loss :math:`f(U) = \frac1m \sum_i |\langle A_i, UU^\top\rangle - y_i|`.

    Parameters
    ----------
    A : (m, n, n) array
        Measurement matrices.
    y : (m,) array
        Measurements.
    U : (n, k) array
        The factor.

    Returns
    -------
    float
    """
    A, y, U = (np.asarray(v, dtype=np.float64) for v in (A, y, U))
    return float(np.mean(np.abs(_measure(A, U @ U.T) - y)))


def recovery_error(U: ArrayLike, M_star: ArrayLike) -> float:
    r"""Relative error :math:`\|UU^\top - M^\star\|_F / \|M^\star\|_F`.

    Parameters
    ----------
    U : (n, k) array
        A recovered factor.
    M_star : (n, n) array
        The target.

    Returns
    -------
    float
    """
    U = np.asarray(U, dtype=np.float64)
    M_star = np.asarray(M_star, dtype=np.float64)
    return float(np.linalg.norm(U @ U.T - M_star) / np.linalg.norm(M_star))


@overload
def robust_recovery(A: ArrayLike, y: ArrayLike, rank: int, *, init_scale: float = ...,
                    step: float = ..., decay: float = ..., n_iter: int = ...,
                    U0: ArrayLike | None = ..., seed: SeedLike = ...,
                    return_info: Literal[False] = ...) -> NDArray[np.float64]: ...
@overload
def robust_recovery(A: ArrayLike, y: ArrayLike, rank: int, *, init_scale: float = ...,
                    step: float = ..., decay: float = ..., n_iter: int = ...,
                    U0: ArrayLike | None = ..., seed: SeedLike = ...,
                    return_info: Literal[True]) -> tuple[NDArray[np.float64], Info]: ...
@overload
def robust_recovery(A: ArrayLike, y: ArrayLike, rank: int, *, init_scale: float = ...,
                    step: float = ..., decay: float = ..., n_iter: int = ...,
                    U0: ArrayLike | None = ..., seed: SeedLike = ...,
                    return_info: bool) -> NDArray[np.float64] | tuple[NDArray[np.float64],
                                                                       Info]: ...
def robust_recovery(A: ArrayLike, y: ArrayLike, rank: int, *, init_scale: float = 1e-3,
                    step: float = 0.1, decay: float = 0.995, n_iter: int = 1000,
                    U0: ArrayLike | None = None, seed: SeedLike = None,
                    return_info: bool = False
                    ) -> NDArray[np.float64] | tuple[NDArray[np.float64], Info]:
    r"""Recover :math:`M^\star \approx UU^\top` from corrupted measurements by SubGM.

    Runs :math:`U_{t+1} = U_t - \eta_0\rho^t D_t` with :math:`D_t` the sub-gradient of the
    :math:`\ell_1` loss (see :mod:`refimpl.completion.robust`; Ma & Fattahi, 2022) from
    :math:`U_0 = \alpha B`, :math:`B` of i.i.d. :math:`\mathcal N(0, 1/n)` entries (so that
    :math:`\|B\|_2 = O(1)`). The sign of a zero residual is taken as 0.

    Parameters
    ----------
    A : (m, n, n) array
        Measurement matrices (need not be symmetric: :math:`A_i + A_i^\top` enters the step).
    y : (m,) array
        Measurements.
    rank : int
        Columns :math:`r'` of the factor, an upper bound of the true rank,
        ``1 <= rank <= n``.
    init_scale : float
        :math:`\alpha`, the size of the initial point.
    step : float
        :math:`\eta_0`, the first step size.
    decay : float
        :math:`\rho \in (0, 1]`, the geometric decay of the steps.
    n_iter : int
        Iterations.
    U0 : (n, rank) array, optional
        Start here instead (``init_scale`` and ``seed`` are then unused).
    seed : int, numpy.random.Generator or None
        Draws :math:`B`.
    return_info : bool
        Also return an :class:`~refimpl.results.Info` whose ``errors`` are the loss
        :math:`f(U_t)` before each step (``converged`` is always ``True``: the method runs a
        fixed number of steps).

    Returns
    -------
    (n, rank) float64 array
        :math:`U`; with ``return_info``, ``(U, info)``.

    Raises
    ------
    ValueError
        If shapes disagree or a parameter is out of range.
    TypeError
        If an argument has the wrong type.
    """
    A = np.asarray(check_array(A, "A", ndim=3, allow_torch=False), dtype=np.float64)
    y = np.asarray(check_array(y, "y", ndim=1, allow_torch=False), dtype=np.float64)
    m, n, n2 = A.shape
    if n != n2:
        raise ValueError(f"A must hold square matrices; got shape {A.shape}")
    if y.shape[0] != m:
        raise ValueError(f"y must have one entry per measurement ({m}); got {y.shape[0]}")
    rank = check_rank(rank, "rank", n, what="n")
    init_scale = check_positive(init_scale, "init_scale")
    step = check_positive(step, "step")
    decay = check_positive(decay, "decay")
    if decay > 1:
        raise ValueError(f"decay must lie in (0, 1]; got {decay!r}")
    n_iter = check_nonnegative_int(n_iter, "n_iter")
    if U0 is None:
        U = init_scale * as_generator(seed).standard_normal((n, rank)) / np.sqrt(n)
    else:
        U = np.array(check_array(U0, "U0", allow_torch=False), dtype=np.float64)
        if U.shape != (n, rank):
            raise ValueError(f"U0 must have shape ({n}, {rank}); got {U.shape}")
    S = A + A.transpose(0, 2, 1)  # (A_i + A_iᵀ), once
    errors = []
    eta = step
    for _ in range(n_iter):
        loss, D = _loss_subgradient(A, S, y, U)
        errors.append(loss)
        U = U - eta * D
        eta *= decay
    if return_info:
        return U, Info(n_iter, True, tuple(errors))
    return U
