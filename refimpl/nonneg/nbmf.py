r"""Nonnegative/binary matrix factorization (NBMF) with a mask over unobserved entries.

NBMF (O'Malley, Vesselinov, Alexandrov & Alexandrov, 2018) approximates a nonnegative
``V`` (m×n) by :math:`W H` with :math:`W \ge 0` (m×k) and :math:`H \in \{0, 1\}^{k \times n}`:
the *right* factor is binary, each column of ``V`` is a nonnegative combination of a
subset of the ``k`` columns of ``W``. For collaborative filtering (Terui, Inoue, Hamakawa,
Tatsumura & Kudo, 2025) the unrated entries are masked out of the objective,

.. math:: f(W, H) = \|M \odot (V - W H)\|_F^2 + \alpha \|W\|_F^2,

with :math:`M_{ij} = 1` on rated entries and 0 elsewhere, and the fitted :math:`W H` predicts
the unrated ones. The minimisation alternates two steps:

- **W step** (nonnegative least squares by the projected gradient method, as in the
  papers): :math:`W \leftarrow \max(0, W - \eta_i \nabla_W f)` row by row, with
  :math:`\nabla_W f / 2 = (M \odot (W H - V)) H^\top + \alpha W` and step
  :math:`\eta_i = 1 / L_i`, :math:`L_i = \lambda_{\max}(H \operatorname{diag}(M_{i,:}) H^\top)
  + \alpha` the Lipschitz constant of row ``i``'s gradient, so that every step decreases
  ``f`` (the descent lemma for projected gradient). ``w_steps`` such steps per iteration.
- **H step**: column ``j`` of ``H`` solves the quadratic unconstrained binary problem (QUBO)

  .. math:: \min_{h \in \{0,1\}^k}\; h^\top Q_j h - 2 q_j^\top h, \qquad
            Q_j = W^\top \operatorname{diag}(M_{:,j}) W, \quad q_j = W^\top (M_{:,j} \odot V_{:,j}),

  which the papers hand to a D-Wave or a simulated-bifurcation Ising machine. Here it is
  solved exactly by **exhaustive search** over the :math:`2^k` binary vectors when
  ``k <= 12`` (all columns at once: the costs of every candidate for every column are two
  matrix products), and by **simulated annealing** otherwise (single-bit flips with
  Metropolis acceptance; every column anneals in parallel). The annealing schedule: start
  from the current column (a warm start, as in reverse annealing); temperature geometric
  from ``anneal_temperatures[0]·s`` to ``anneal_temperatures[1]·s`` over ``anneal_sweeps``
  sweeps, with ``s`` the median absolute energy change of a single flip at the start; each
  sweep proposes a flip of every bit once, in a fresh random order; the best state seen is
  kept. Since the start state is among those seen, the H step never increases ``f``.

So ``f`` never increases from one iteration to the next (``Info.errors`` records it).
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._typing import Array
from refimpl._validation import (
    check_choice,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.nonneg.nmf import _relative_stop
from refimpl.results import Info
from refimpl.seeding import SeedLike, as_generator

__all__ = ["NBMF", "nbmf"]

#: The values of ``nbmf``'s ``binary`` option: how the binary step is solved.
BINARY_METHODS = ("auto", "exhaustive", "anneal")

#: The largest rank at which ``binary="auto"`` searches all ``2**rank`` binary columns.
EXHAUSTIVE_MAX_RANK = 12

# Candidate costs are formed in column chunks of at most this many (column, candidate) pairs.
_CHUNK_ENTRIES = 1 << 22


class NBMF(NamedTuple):
    """``V ≈ W H`` with ``W >= 0`` and ``H`` binary.

    Attributes
    ----------
    W : (m, k) array or tensor
        The nonnegative factor.
    H : (k, n) array or tensor
        The binary factor (entries exactly 0.0 or 1.0, in ``W``'s floating dtype).
    """

    W: Any
    H: Any

    def reconstruct(self) -> Array:
        """``W H``: the fitted matrix; on unobserved entries, the predictions."""
        return self.W @ self.H

    def predict(self, rows: Any, cols: Any) -> Array:
        """The fitted values at the entries ``(rows[t], cols[t])`` (e.g. the unrated ones).

        Parameters
        ----------
        rows, cols : 1-D integer arrays (or tensors) of equal length
            Row and column indices of the entries to predict, e.g. ``np.nonzero(~mask)``.

        Returns
        -------
        array or tensor
            ``(W H)[rows, cols]``, computed without forming ``W H``.

        Raises
        ------
        ValueError
            If ``rows`` and ``cols`` differ in shape.
        """
        if tuple(rows.shape) != tuple(cols.shape):
            raise ValueError(f"rows and cols must have the same shape; got {tuple(rows.shape)} "
                             f"and {tuple(cols.shape)}")
        return (self.W[rows, :] * _xp.mT(self.H[:, cols])).sum(-1)


def _check_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """The mask as a float 0/1 array of ``shape`` (True / 1 = observed)."""
    m = np.asarray(_xp.to_numpy(mask) if _xp.is_torch_tensor(mask) else mask)
    if tuple(m.shape) != shape:
        raise ValueError(f"mask must have the shape of V, {shape}; got {tuple(m.shape)}")
    if m.dtype != bool:
        if not np.issubdtype(m.dtype, np.number) or not np.all((m == 0) | (m == 1)):
            raise ValueError("mask must be boolean or contain only 0 and 1 "
                             "(1 = observed)")
    return m.astype(np.float64)


def _masked_objective(V: np.ndarray, M: np.ndarray, W: np.ndarray, H: np.ndarray,
                     alpha: float) -> float:
    """``‖M ⊙ (V − W H)‖_F² + α‖W‖_F²`` (NumPy, float64)."""
    R = M * (V - W @ H)
    return float(np.sum(R * R) + alpha * np.sum(W * W))


def _w_step(V: np.ndarray, M: np.ndarray, W: np.ndarray, H: np.ndarray, alpha: float,
            steps: int) -> np.ndarray:
    """``steps`` projected-gradient steps on W, row ``i`` with step ``1 / L_i``."""
    gram = np.einsum("ij,aj,bj->iab", M, H, H)  # H diag(M_i) Hᵀ for every row i
    L = np.linalg.eigvalsh(gram)[:, -1] + alpha
    inv_L = np.divide(1.0, L, out=np.zeros_like(L), where=L > 0)[:, None]
    MV = M * V
    for _ in range(steps):
        grad = (M * (W @ H)) @ H.T - MV @ H.T + alpha * W  # half the gradient of f
        W = np.maximum(W - inv_L * grad, 0.0)
    return W


def _qubo(V: np.ndarray, M: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q`` (n, k, k) and ``q`` (n, k) of every column's binary problem."""
    Q = np.einsum("ij,ia,ib->jab", M, W, W)
    q = (M * V).T @ W
    return Q, q


def _binary_step_exhaustive(V: np.ndarray, M: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The exact H step: for every column, the best of all ``2**k`` binary vectors."""
    k = W.shape[1]
    B = np.array(list(itertools.product((0.0, 1.0), repeat=k)))  # (2^k, k)
    P = W @ B.T  # (m, 2^k): W b for every candidate b
    n = V.shape[1]
    best = np.empty(n, dtype=np.int64)
    chunk = max(1, _CHUNK_ENTRIES // B.shape[0])
    P2 = P * P
    for s in range(0, n, chunk):
        Ms, Vs = M[:, s:s + chunk], V[:, s:s + chunk]
        # Σ_i m_ij (v_ij − P_ib)² up to the constant Σ_i m_ij v_ij²
        cost = Ms.T @ P2 - 2.0 * (Ms * Vs).T @ P
        best[s:s + chunk] = np.argmin(cost, axis=1)
    return B[best].T.copy()


def _binary_step_anneal(V: np.ndarray, M: np.ndarray, W: np.ndarray, H: np.ndarray,
                        sweeps: int, temperatures: tuple[float, float],
                        rng: np.random.Generator) -> np.ndarray:
    """The H step by simulated annealing from the current ``H`` (see the module docstring)."""
    Q, q = _qubo(V, M, W)
    n, k = q.shape
    h = H.T.astype(np.float64).copy()  # (n, k), one column of H per row
    g = np.einsum("jab,jb->ja", Q, h)  # Q_j h_j
    diag = np.einsum("jaa->ja", Q)
    energy = np.einsum("ja,ja->j", h, g) - 2.0 * np.einsum("ja,ja->j", q, h)
    best_h, best_e = h.copy(), energy.copy()
    delta0 = np.abs(2.0 * (1.0 - 2.0 * h) * (g - q) + diag)
    scale = float(np.median(delta0))
    if not scale > 0:
        scale = float(np.max(delta0)) if np.max(delta0) > 0 else 1.0
    t0, t1 = temperatures
    temps = scale * t0 * (t1 / t0) ** (np.arange(sweeps) / max(sweeps - 1, 1))
    cols = np.arange(n)
    for T in temps:
        for bit in rng.permutation(k):
            d = 1.0 - 2.0 * h[:, bit]
            delta = 2.0 * d * (g[:, bit] - q[:, bit]) + diag[:, bit]
            accept = (delta <= 0) | (rng.random(n) < np.exp(-np.maximum(delta, 0.0) / T))
            if not accept.any():
                continue
            idx = cols[accept]
            h[idx, bit] += d[idx]
            g[idx] += d[idx, None] * Q[idx, :, bit]
            energy[idx] += delta[idx]
            better = energy < best_e
            if better.any():
                best_e[better] = energy[better]
                best_h[better] = h[better]
    return best_h.T.copy()


def nbmf(V: Array, rank: int, *, mask: Array | None = None, alpha: float = 0.0,
         binary: str = "auto", max_iter: int = 200, tol: float = 1e-9, w_steps: int = 20,
         anneal_sweeps: int = 200, anneal_temperatures: tuple[float, float] = (2.0, 1e-3),
         seed: SeedLike = None, return_info: bool = False) -> NBMF | tuple[NBMF, Info]:
    r"""Nonnegative/binary factorization ``V ≈ W H`` fitted on the observed entries only.

    Minimises :math:`\|M \odot (V - WH)\|_F^2 + \alpha\|W\|_F^2` over :math:`W \ge 0` and
    binary ``H`` by alternating a projected-gradient W step and an exact (exhaustive) or
    annealed binary H step; see :mod:`refimpl.nonneg.nbmf`. The objective never increases.

    Parameters
    ----------
    V : (m, n) array or tensor
        Nonnegative, finite data (e.g. ratings, users × items). Unobserved entries may hold
        any finite nonnegative value (0, say): the mask removes them from the fit.
    rank : int
        ``k``, ``1 <= k <= min(m, n)``.
    mask : (m, n) boolean or 0/1 array, optional
        True (1) where ``V`` is observed; default: every entry observed.
    alpha : float
        Tikhonov weight ``>= 0`` on ``W``.
    binary : {"auto", "exhaustive", "anneal"}
        How the binary step is solved; ``"auto"`` searches exhaustively when
        ``k <= 12`` and anneals otherwise.
    max_iter : int
        Iterations (one W step and one H step each), ``>= 0``.
    tol : float
        Stop when the objective's decrease over one iteration is at most ``tol`` times its
        previous value, or it reaches zero (``>= 0``; with ``0`` every one of the
        ``max_iter`` iterations runs): the stopping rule of :func:`~refimpl.nonneg.nmf`.
    w_steps : int
        Projected-gradient steps per W step, ``>= 1``.
    anneal_sweeps : int
        Sweeps of the annealer per H step, ``>= 1`` (``binary="anneal"`` only).
    anneal_temperatures : (float, float)
        Start and end temperatures ``> 0``, relative to the median single-flip energy
        change (``binary="anneal"`` only).
    seed : int or numpy.random.Generator, optional
        Draws the initial ``W`` (uniform) and ``H`` (fair coin flips) and the annealer's
        moves.
    return_info : bool
        Also return :class:`refimpl.results.Info` with ``errors`` the objective ``f`` after
        each iteration (the first entry is ``f`` at the initial factors).

    Returns
    -------
    NBMF or (NBMF, Info)
        The factors as the input's array kind, device and floating dtype (computed in
        float64 with NumPy).

    Raises
    ------
    ValueError
        If ``V`` has negative, NaN or Inf entries or is empty, ``mask`` has the wrong shape or
        values other than 0/1, or an option is out of range.
    TypeError
        If ``V`` is not a real floating-point array or a count is not an integer.
    """
    V_in, _, back = _xp.prepare(V, "V", paths=("numpy",))
    Vn = np.asarray(V_in, dtype=np.float64)
    check_nonnegative(Vn, "V")
    m, n = Vn.shape
    k = check_rank(rank, "rank", min(m, n))
    M = np.ones_like(Vn) if mask is None else _check_mask(mask, (m, n))
    alpha = check_positive(alpha, "alpha", allow_zero=True)
    method = check_choice(binary, "binary", BINARY_METHODS)
    if method == "auto":
        method = "exhaustive" if k <= EXHAUSTIVE_MAX_RANK else "anneal"
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    w_steps = check_positive_int(w_steps, "w_steps")
    anneal_sweeps = check_positive_int(anneal_sweeps, "anneal_sweeps")
    if len(anneal_temperatures) != 2:
        raise ValueError("anneal_temperatures must be a pair (start, end); got "
                         f"{anneal_temperatures!r}")
    temps = (check_positive(anneal_temperatures[0], "anneal_temperatures[0]"),
             check_positive(anneal_temperatures[1], "anneal_temperatures[1]"))
    rng = as_generator(seed)

    observed = Vn[M > 0]
    level = float(observed.mean()) if observed.size else 0.0
    W = rng.uniform(0.0, 1.0, (m, k)) * np.sqrt(max(level, 1e-12) / k)
    H = (rng.random((k, n)) < 0.5).astype(np.float64)
    errors = [_masked_objective(Vn, M, W, H, alpha)]
    converged = False
    for _ in range(max_iter):
        W = _w_step(Vn, M, W, H, alpha, w_steps)
        if method == "exhaustive":
            H_new = _binary_step_exhaustive(Vn, M, W)
            # keep the current column on a tie, so the step is a pure improvement
            f_old = _column_costs(Vn, M, W, H)
            f_new = _column_costs(Vn, M, W, H_new)
            H = np.where((f_new < f_old)[None, :], H_new, H)
        else:
            H = _binary_step_anneal(Vn, M, W, H, anneal_sweeps, temps, rng)
        errors.append(_masked_objective(Vn, M, W, H, alpha))
        if _relative_stop(errors, tol):
            converged = True
            break
    result = back(NBMF(W, H))
    return (result, Info(len(errors) - 1, converged, tuple(errors))) if return_info else result


def _column_costs(V: np.ndarray, M: np.ndarray, W: np.ndarray, H: np.ndarray) -> np.ndarray:
    """``‖M_{:,j} ⊙ (V_{:,j} − W h_j)‖²`` for every column ``j``."""
    R = M * (V - W @ H)
    return np.sum(R * R, axis=0)

