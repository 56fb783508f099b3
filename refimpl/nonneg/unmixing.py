r"""Structured sparse NMF for hyperspectral unmixing, synthetic scenes and unmixing metrics.

A hyperspectral image with ``bands`` spectral bands and ``n = height·width`` pixels is the
matrix ``X`` (bands × n). The linear mixing model writes :math:`X \approx E A` with the
endmember spectra :math:`E \ge 0` (bands × r) and abundances :math:`A \ge 0` (r × n), each
column of ``A`` (ideally) on the simplex.

Structured sparse NMF (SS-NMF; Zhu, Wang, Fan, Xiang, Meng & Pan, 2014) adds a lasso penalty
on ``A`` and a graph-Laplacian (manifold) penalty over a pixel-neighbourhood graph:

.. math:: \tfrac12\|X - EA\|_F^2 + \lambda_1 \|A\|_1
          + \tfrac{\lambda_G}{2}\operatorname{tr}(A L A^\top)
          \;\Big[+ \tfrac{\delta^2}{2}\|\mathbf 1^\top - \mathbf 1^\top A\|^2\Big],

with :math:`L = D - G`, ``G`` the weights :math:`G_{ij} = \exp(-\|x_i - x_j\|^2 / \sigma)` of
pixels ``j`` within ``radius`` of pixel ``i`` on the image grid (0 elsewhere) and ``D`` its
degree matrix; :math:`\operatorname{tr}(A L A^\top) = \tfrac12\sum_{ij} G_{ij}\|a_i - a_j\|^2`
pulls similar neighbouring pixels towards similar abundances, the lasso makes them share a
few endmembers: the two together are the paper's "structured sparse" constraint (our reading
of the paper: the structure is this ℓ1 + Laplacian pair, not a group norm). The bracketed
term is the optional abundance sum-to-one constraint in the usual augmented form
(:math:`X \to [X; \delta \mathbf 1^\top]`, :math:`E \to [E; \delta\mathbf 1^\top]` in the ``A``
update), off by default (``delta=0``).

The multiplicative updates (Lee & Seung's, with the regularisers split by sign as in graph
regularised NMF)

.. math:: E \leftarrow E \odot \frac{X A^\top}{E A A^\top}, \qquad
          A \leftarrow A \odot \frac{E^\top X + \delta^2 \mathbf 1\mathbf 1^\top + \lambda_G A G}
          {(E^\top E + \delta^2 \mathbf 1\mathbf 1^\top) A + \lambda_1 + \lambda_G A D}

never increase the objective (each is the minimiser of an auxiliary function); with
:math:`\lambda_1 = \lambda_G = \delta = 0` they are exactly Lee–Seung's Frobenius updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from refimpl import _xp
from refimpl._typing import Array, SparseMatrix
from refimpl._validation import (
    check_array,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.nonneg.nmf import _floor, _relative_stop
from refimpl.results import Info
from refimpl.seeding import SeedLike, as_generator

__all__ = ["SyntheticUnmixing", "Unmixing", "abundance_rmse", "match_endmembers",
           "normalize_abundances", "pixel_graph", "sad", "structured_sparse_nmf",
           "synthetic_unmixing"]

_TINY = np.finfo(np.float64).tiny


class Unmixing(NamedTuple):
    """``X ≈ E A``: endmembers and abundances.

    Attributes
    ----------
    E : (bands, r) array or tensor
        Nonnegative endmember spectra (columns).
    A : (r, n) array or tensor
        Nonnegative abundances, one column per pixel.
    """

    E: Any
    A: Any

    def reconstruct(self) -> Array:
        """``E A``."""
        return self.E @ self.A


class SyntheticUnmixing(NamedTuple):
    """A synthetic scene from :func:`synthetic_unmixing`.

    Attributes
    ----------
    X : (bands, height·width) ndarray
        The noisy, nonnegative image; pixel ``p = row·width + col``.
    E : (bands, r) ndarray
        The true endmembers.
    A : (r, height·width) ndarray
        The true abundances (columns on the simplex).
    height, width : int
        The image shape.
    """

    X: np.ndarray
    E: np.ndarray
    A: np.ndarray
    height: int
    width: int


def pixel_graph(X: Array, height: int, width: int, *, radius: int = 1,
                sigma: float | None = None) -> SparseMatrix:
    r"""Heat-kernel weights between pixels within ``radius`` of each other on the image grid.

    Parameters
    ----------
    X : (bands, height·width) array or tensor
        The image, pixel ``p = row·width + col``.
    height, width : int
        The image shape.
    radius : int
        Pixels ``(r, c)`` and ``(r', c')`` are neighbours when
        ``max(|r − r'|, |c − c'|) <= radius`` (``radius=1``: the 8-neighbourhood), ``>= 1``.
    sigma : float, optional
        Kernel width ``> 0`` in :math:`\exp(-\|x_i - x_j\|^2/\sigma)`; default the mean squared
        distance over the edges.

    Returns
    -------
    scipy.sparse.csr_matrix
        The symmetric (n, n) weight matrix ``G`` (zero diagonal), float64.

    Raises
    ------
    ValueError
        If ``height·width`` is not the number of columns of ``X``, or an option is out of
        range.
    TypeError
        If ``X`` is not a real floating-point array or a count is not an integer.
    """
    import scipy.sparse as sp

    Xn = np.asarray(_xp.to_numpy(check_array(X, "X")), dtype=np.float64)
    height = check_positive_int(height, "height")
    width = check_positive_int(width, "width")
    radius = check_positive_int(radius, "radius")
    if height * width != Xn.shape[1]:
        raise ValueError(f"height·width must equal the number of pixels (columns of X), "
                         f"{Xn.shape[1]}; got {height}·{width} = {height * width}")
    n = height * width
    rr, cc = np.divmod(np.arange(n), width)
    src, dst = [], []
    for dr in range(-radius, radius + 1):
        for dc in range(-radius, radius + 1):
            if (dr, dc) <= (0, 0):  # each unordered pair once: offsets after (0, 0)
                continue
            r2, c2 = rr + dr, cc + dc
            ok = (r2 >= 0) & (r2 < height) & (c2 >= 0) & (c2 < width)
            src.append(np.nonzero(ok)[0])
            dst.append(r2[ok] * width + c2[ok])
    i = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    j = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    d2 = np.sum((Xn[:, i] - Xn[:, j]) ** 2, axis=0)
    if sigma is None:
        s = float(d2.mean()) if d2.size and d2.mean() > 0 else 1.0
    else:
        s = check_positive(sigma, "sigma")
    w = np.exp(-d2 / s)
    G = sp.coo_matrix((np.concatenate((w, w)), (np.concatenate((i, j)), np.concatenate((j, i)))),
                      shape=(n, n))
    return G.tocsr()


def _objective(X: Any, E: Any, A: Any, G: Any, deg: Any, l1: float, lg: float,
               delta: float) -> float:
    """The objective, for NumPy arrays (``G`` SciPy sparse) or tensors (``G`` sparse COO)."""
    R = X - E @ A
    f = 0.5 * float((R * R).sum()) + l1 * float(A.sum())
    if lg:
        AL = A * deg[None, :] - (G @ A.T).T  # A L
        f += 0.5 * lg * float((A * AL).sum())
    if delta:
        s = 1.0 - A.sum(0)
        f += 0.5 * delta * delta * float(s @ s)
    return f


def _mu_step(X: Any, E: Any, A: Any, G: Any, deg: Any, l1: float, lg: float,
             delta: float, tiny: float = _TINY) -> tuple[Any, Any]:
    """One E update, then one A update (see the module docstring); either array kind
    (``tiny``: the floor of the denominators, the smallest normal number of the dtype)."""
    E = E * (X @ A.T) / _floor(E @ (A @ A.T), tiny)
    num = E.T @ X
    den = (E.T @ E) @ A + l1
    if delta:
        d2 = delta * delta
        num = num + d2
        den = den + d2 * A.sum(0)[None, :]
    if lg:
        num = num + lg * (G @ A.T).T
        den = den + lg * A * deg[None, :]
    A = A * num / _floor(den, tiny)
    return E, A


def _graph_to_torch(G: Any, like: Any) -> Any:
    """A SciPy sparse matrix as a (coalesced) torch sparse COO tensor of ``like``'s dtype and
    device."""
    import torch

    G = G.tocoo()
    index = torch.as_tensor(np.vstack([G.row, G.col]), dtype=torch.int64)
    return torch.sparse_coo_tensor(index, torch.as_tensor(G.data), size=G.shape,
                                   dtype=like.dtype, device=like.device,
                                   check_invariants=True).coalesce()


def structured_sparse_nmf(X: Array, rank: int, *, image_shape: tuple[int, int] | None = None,
                          weights: Any = None, lambda_l1: float = 0.1,
                          lambda_graph: float = 0.1, delta: float = 0.0, radius: int = 1,
                          sigma: float | None = None, init: tuple[Array, Array] | None = None,
                          max_iter: int = 500, tol: float = 1e-7, seed: SeedLike = None,
                          backend: str = "auto",
                          return_info: bool = False) -> Unmixing | tuple[Unmixing, Info]:
    r"""Structured sparse NMF (ℓ1 + graph Laplacian) of a hyperspectral image ``X ≈ E A``.

    Minimises :math:`\tfrac12\|X - EA\|_F^2 + \lambda_1\|A\|_1 + \tfrac{\lambda_G}{2}
    \operatorname{tr}(A L A^\top)` (plus the sum-to-one term when ``delta > 0``) by the
    multiplicative updates of :mod:`refimpl.nonneg.unmixing`; the objective never increases.

    Parameters
    ----------
    X : (bands, n) array or tensor
        Nonnegative, finite image, one column per pixel (``p = row·width + col``).
    rank : int
        Number ``r`` of endmembers, ``1 <= r <= min(bands, n)``.
    image_shape : (int, int), optional
        ``(height, width)`` with ``height·width = n``: builds the graph with
        :func:`pixel_graph` (``radius``, ``sigma``). Needed when ``lambda_graph > 0`` and
        ``weights`` is not given.
    weights : (n, n) array or scipy sparse matrix, optional
        A symmetric nonnegative weight matrix ``G`` to use instead.
    lambda_l1 : float
        ``λ₁ >= 0``, the lasso weight on ``A``.
    lambda_graph : float
        ``λ_G >= 0``, the graph-Laplacian weight.
    delta : float
        ``δ >= 0``, weight of the abundance sum-to-one term (0: off).
    radius, sigma
        Passed to :func:`pixel_graph`.
    init : (E0, A0), optional
        Positive initial factors of shapes (bands, r) and (r, n); default uniform random
        scaled to the data, ``sqrt(mean(X) / r)·U(0, 1)`` (scikit-learn's ``init="random"``).
    max_iter : int
        Iterations ``>= 0`` (one E and one A update each).
    tol : float
        Stop when the objective's relative decrease over one iteration is at most ``tol``,
        or it reaches zero (``>= 0``; with ``0`` every one of the ``max_iter`` iterations
        runs): the stopping rule of :func:`~refimpl.nonneg.nmf`.
    seed : int or numpy.random.Generator, optional
        Draws the random initial factors.
    backend : {"auto", "numpy", "torch"}
        ``"numpy"``: the reference, float64; ``"torch"``: the same updates on tensors (any
        device, in the input's floating dtype; the graph becomes a sparse COO tensor).
        ``"auto"``: NumPy for NumPy input, torch for tensors.
    return_info : bool
        Also return :class:`refimpl.results.Info` with ``errors`` the objective after each
        iteration (the first entry at the initial factors).

    Returns
    -------
    Unmixing or (Unmixing, Info)
        The factors as the input's array kind, device and floating dtype.

    Raises
    ------
    ValueError
        If ``X`` is negative, empty or not finite; shapes of ``image_shape``, ``weights`` or
        ``init`` do not match; ``lambda_graph > 0`` without a graph; or an option is out of
        range.
    TypeError
        If ``X`` is not a real floating-point array or a count is not an integer.
    """
    import scipy.sparse as sp

    X_in, path, back = _xp.prepare(X, "X", backend=backend, paths=("numpy", "torch"))
    Xn = np.asarray(_xp.to_numpy(X_in), dtype=np.float64)
    check_nonnegative(Xn, "X")
    bands, n = Xn.shape
    r = check_rank(rank, "rank", min(bands, n))
    l1 = check_positive(lambda_l1, "lambda_l1", allow_zero=True)
    lg = check_positive(lambda_graph, "lambda_graph", allow_zero=True)
    delta = check_positive(delta, "delta", allow_zero=True)
    max_iter = check_nonnegative_int(max_iter, "max_iter")
    tol = check_positive(tol, "tol", allow_zero=True)
    if weights is not None:
        G = sp.csr_matrix(weights, dtype=np.float64)
        if G.shape != (n, n):
            raise ValueError(f"weights must be (n, n) = ({n}, {n}); got {G.shape}")
        if G.nnz and (G.data.min() < 0 or abs(G - G.T).max() > 1e-12 * abs(G).max()):
            raise ValueError("weights must be symmetric and nonnegative")
    elif image_shape is not None:
        if len(image_shape) != 2:
            raise ValueError(f"image_shape must be (height, width); got {image_shape!r}")
        G = pixel_graph(Xn, image_shape[0], image_shape[1], radius=radius, sigma=sigma)
    elif lg > 0:
        raise ValueError("lambda_graph > 0 needs image_shape=(height, width) or weights")
    else:
        G = sp.csr_matrix((n, n))
    deg = np.asarray(G.sum(axis=1)).ravel()

    if init is None:
        rng = as_generator(seed)
        scale = np.sqrt(Xn.mean() / r)
        E = scale * rng.uniform(0.0, 1.0, (bands, r))
        A = scale * rng.uniform(0.0, 1.0, (r, n))
    else:
        E = np.array(_xp.to_numpy(check_array(init[0], "init[0]")), dtype=np.float64)
        A = np.array(_xp.to_numpy(check_array(init[1], "init[1]")), dtype=np.float64)
        if E.shape != (bands, r) or A.shape != (r, n):
            raise ValueError(f"init must have shapes ({bands}, {r}) and ({r}, {n}); got "
                             f"{E.shape} and {A.shape}")
        if np.any(E < 0) or np.any(A < 0):
            raise ValueError("init factors must be nonnegative")

    Xw: Any = Xn
    Gw: Any = G
    degw: Any = deg
    tiny = _TINY
    if path == "torch":
        import torch

        Xw = X_in
        E, A, degw = (_xp.to_path(a, "torch", like=Xw) for a in (E, A, deg))
        Gw = _graph_to_torch(G, Xw)
        tiny = float(torch.finfo(Xw.dtype).tiny)
    errors = [_objective(Xw, E, A, Gw, degw, l1, lg, delta)]
    converged = False
    for _ in range(max_iter):
        E, A = _mu_step(Xw, E, A, Gw, degw, l1, lg, delta, tiny)
        errors.append(_objective(Xw, E, A, Gw, degw, l1, lg, delta))
        if _relative_stop(errors, tol):
            converged = True
            break
    result = back(Unmixing(E, A))
    return (result, Info(len(errors) - 1, converged, tuple(errors))) if return_info else result


def _smooth_field(rng: np.random.Generator, height: int, width: int,
                  length: float) -> np.ndarray:
    """White noise smoothed by a periodic Gaussian of standard deviation ``length`` pixels."""
    z = rng.standard_normal((height, width))
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    kernel = np.exp(-2.0 * (np.pi * length) ** 2 * (fy * fy + fx * fx))
    f = np.real(np.fft.ifft2(np.fft.fft2(z) * kernel))
    return (f - f.mean()) / (f.std() + 1e-300)


def synthetic_unmixing(bands: int, n_endmembers: int, height: int, width: int, *,
                       snr_db: float = 30.0, smoothness: float | None = None,
                       purity: float = 3.0, seed: SeedLike = None) -> SyntheticUnmixing:
    r"""A synthetic hyperspectral scene with known endmembers and smooth abundances.

    - Endmembers: a baseline in [0.05, 0.2] plus three Gaussian bumps per spectrum (centres
      uniform over the bands, widths ``bands/12``–``bands/5``, heights in [0.2, 1]): smooth,
      positive, distinct.
    - Abundances: for each endmember a Gaussian random field (white noise smoothed with a
      periodic Gaussian of ``smoothness`` pixels, standardised), mapped to the simplex by a
      softmax across endmembers with inverse temperature ``purity`` (larger: purer pixels).
    - Noise: white Gaussian at ``snr_db`` (signal power over noise power, in dB); the noisy
      image is clipped at 0.

    Parameters
    ----------
    bands : int
        Spectral bands, ``>= 2``.
    n_endmembers : int
        ``r``, ``1 <= r <= bands``.
    height, width : int
        Image shape (``>= 1`` each).
    snr_db : float
        Signal-to-noise ratio in dB (``> 0``; ``numpy.inf`` for no noise).
    smoothness : float, optional
        Correlation length ``> 0`` of the abundance fields in pixels; default
        ``max(height, width) / 8``.
    purity : float
        Softmax inverse temperature ``> 0``.
    seed : int or numpy.random.Generator, optional
        Draws everything.

    Returns
    -------
    SyntheticUnmixing
        ``X`` (bands, height·width), ``E``, ``A``, ``height``, ``width``.

    Raises
    ------
    ValueError
        If a size or option is out of range.
    TypeError
        If a size is not an integer.
    """
    bands = check_positive_int(bands, "bands")
    if bands < 2:
        raise ValueError(f"bands must be at least 2; got {bands}")
    r = check_rank(n_endmembers, "n_endmembers", bands, what="bands")
    height = check_positive_int(height, "height")
    width = check_positive_int(width, "width")
    snr = (float("inf") if isinstance(snr_db, float) and snr_db == float("inf")
           else check_positive(snr_db, "snr_db"))
    length = (max(height, width) / 8.0 if smoothness is None
              else check_positive(smoothness, "smoothness"))
    purity = check_positive(purity, "purity")
    rng = as_generator(seed)

    grid = np.arange(bands, dtype=np.float64)
    E = np.empty((bands, r))
    for e in range(r):
        spec = np.full(bands, rng.uniform(0.05, 0.2))
        for _ in range(3):
            c = rng.uniform(0, bands - 1)
            w = rng.uniform(bands / 12.0, bands / 5.0)
            spec += rng.uniform(0.2, 1.0) * np.exp(-0.5 * ((grid - c) / w) ** 2)
        E[:, e] = spec
    Z = np.stack([_smooth_field(rng, height, width, length).ravel() for _ in range(r)])
    Z = purity * Z
    Z -= Z.max(axis=0, keepdims=True)
    A = np.exp(Z)
    A /= A.sum(axis=0, keepdims=True)
    clean = E @ A
    if np.isinf(snr):
        X = clean
    else:
        sigma = np.sqrt(np.mean(clean * clean) / 10.0 ** (snr / 10.0))
        X = np.maximum(clean + sigma * rng.standard_normal(clean.shape), 0.0)
    return SyntheticUnmixing(X, E, A, height, width)


def _angles(E_true: np.ndarray, E_est: np.ndarray) -> np.ndarray:
    """Spectral angles between every true (rows) and estimated (columns) endmember."""
    nt = np.linalg.norm(E_true, axis=0)
    ne = np.linalg.norm(E_est, axis=0)
    if np.any(nt == 0) or np.any(ne == 0):
        raise ValueError("endmembers must be nonzero columns to have a spectral angle")
    cos = (E_true.T @ E_est) / np.outer(nt, ne)
    return np.arccos(np.clip(cos, -1.0, 1.0))


def _pair(E_true: Array, E_est: Array, what: str = "E") -> tuple[np.ndarray, np.ndarray]:
    Et = np.asarray(_xp.to_numpy(check_array(E_true, f"{what}_true")), dtype=np.float64)
    Ee = np.asarray(_xp.to_numpy(check_array(E_est, f"{what}_est")), dtype=np.float64)
    return Et, Ee


def match_endmembers(E_true: Array, E_est: Array) -> np.ndarray:
    """The assignment of estimated to true endmembers that minimises the total spectral angle.

    Parameters
    ----------
    E_true : (bands, r) array or tensor
        True endmembers (columns).
    E_est : (bands, r) array or tensor
        Estimated endmembers, in any order and scale.

    Returns
    -------
    ndarray of int
        ``perm`` (r,) with ``E_est[:, perm[i]]`` matched to ``E_true[:, i]`` (the Hungarian
        assignment, ``scipy.optimize.linear_sum_assignment``).

    Raises
    ------
    ValueError
        If the shapes differ or a column is zero, empty or not finite.
    TypeError
        If an input is not a real floating-point array.
    """
    from scipy.optimize import linear_sum_assignment

    Et, Ee = _pair(E_true, E_est)
    if Et.shape != Ee.shape:
        raise ValueError(f"E_true and E_est must have the same shape; got {Et.shape} and "
                         f"{Ee.shape}")
    rows, cols = linear_sum_assignment(_angles(Et, Ee))
    perm = np.empty(Et.shape[1], dtype=np.int64)
    perm[rows] = cols
    return perm


def sad(E_true: Array, E_est: Array) -> float:
    r"""Mean spectral angle distance (radians) between matched endmembers.

    :math:`\operatorname{SAD} = \frac1r\sum_i \arccos\frac{e_i^\top \hat e_{\pi(i)}}
    {\|e_i\|\|\hat e_{\pi(i)}\|}` with :math:`\pi` from :func:`match_endmembers`; invariant to
    the order and the positive scale of the estimated endmembers.

    Parameters
    ----------
    E_true : (bands, r) array or tensor
        True endmembers (columns).
    E_est : (bands, r) array or tensor
        Estimated endmembers.

    Returns
    -------
    float
        In ``[0, π]``; 0 for identical directions, ``π/2`` for orthogonal ones.

    Raises
    ------
    ValueError
        If the shapes differ or a column is zero, empty or not finite.
    TypeError
        If an input is not a real floating-point array.
    """
    Et, Ee = _pair(E_true, E_est)
    perm = match_endmembers(Et, Ee)
    ang = _angles(Et, Ee)
    return float(np.mean(ang[np.arange(Et.shape[1]), perm]))


def abundance_rmse(A_true: Array, A_est: Array, perm: Any = None) -> float:
    r"""Root-mean-square error between true and estimated abundances, rows matched.

    :math:`\sqrt{\frac{1}{rn}\sum_{i,p} (A_{ip} - \hat A_{\pi(i) p})^2}`.

    Parameters
    ----------
    A_true : (r, n) array or tensor
        True abundances.
    A_est : (r, n) array or tensor
        Estimated abundances (rows in any order).
    perm : (r,) integer array, optional
        ``A_est[perm[i]]`` is matched to ``A_true[i]`` (e.g. from :func:`match_endmembers`);
        default the assignment that minimises the error itself (Hungarian).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the shapes differ, ``perm`` is not a permutation of ``range(r)``, or an input is
        empty or not finite.
    TypeError
        If an input is not a real floating-point array.
    """
    At, Ae = _pair(A_true, A_est, "A")
    if At.shape != Ae.shape:
        raise ValueError(f"A_true and A_est must have the same shape; got {At.shape} and "
                         f"{Ae.shape}")
    r = At.shape[0]
    if perm is None:
        from scipy.optimize import linear_sum_assignment

        cost = ((At[:, None, :] - Ae[None, :, :]) ** 2).sum(-1)
        rows, cols = linear_sum_assignment(cost)
        p = np.empty(r, dtype=np.int64)
        p[rows] = cols
    else:
        p = np.asarray(_xp.to_numpy(perm) if _xp.is_torch_tensor(perm) else perm)
        if p.shape != (r,) or sorted(p.tolist()) != list(range(r)):
            raise ValueError(f"perm must be a permutation of range({r}); got {p!r}")
    return float(np.sqrt(np.mean((At - Ae[p]) ** 2)))


def normalize_abundances(E: Array, A: Array) -> Unmixing:
    r"""Rescale each endmember/abundance pair so the abundances best sum to one per pixel.

    NMF fixes ``E A`` but not the scale of each pair :math:`(e_i, a_i) \to (c_i^{-1} e_i,
    c_i a_i)`. This picks :math:`c \ge 0` minimising :math:`\|A^\top c - \mathbf 1\|`
    (nonnegative least squares) and returns :math:`(E\,\mathrm{diag}(c)^{-1},
    \mathrm{diag}(c) A)`, the same product; a pair with :math:`c_i = 0` keeps its scale.

    Parameters
    ----------
    E : (bands, r) array or tensor
        Endmembers.
    A : (r, n) array or tensor
        Abundances.

    Returns
    -------
    Unmixing
        The rescaled factors, as NumPy arrays (float64).

    Raises
    ------
    ValueError
        If the shapes do not match or an input is empty or not finite.
    TypeError
        If an input is not a real floating-point array.
    """
    from scipy.optimize import nnls

    En = np.asarray(_xp.to_numpy(check_array(E, "E")), dtype=np.float64)
    An = np.asarray(_xp.to_numpy(check_array(A, "A")), dtype=np.float64)
    if En.shape[1] != An.shape[0]:
        raise ValueError(f"E has {En.shape[1]} columns but A has {An.shape[0]} rows")
    c, _ = nnls(An.T, np.ones(An.shape[1]))
    c = np.where(c > 0, c, 1.0)
    return Unmixing(En / c[None, :], An * c[:, None])
