r"""The two types every completion method of chapter 05 shares.

- :class:`Interactions`: observed (user, item, value) triples, optionally time-stamped, with
  the matrix shape; what the loaders return, what the splits cut, and what every fitting
  function takes (or a SciPy sparse matrix, users × items).
- :class:`MF`: a fitted factor model :math:`\hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i`
  (biases and mean zero for the methods without them), with prediction, scores over all
  items and top-k recommendation with seen items filtered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from refimpl._typing import ArrayLike, NDArray

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["MF", "Interactions", "as_interactions", "mask_seen", "top_k"]


class Interactions(NamedTuple):
    """Observed entries of a users × items matrix.

    Attributes
    ----------
    users, items : (nnz,) int64 arrays
        Row and column of each observation, ``0 <= users < n_users``, ``0 <= items < n_items``.
    values : (nnz,) float64 array
        The observed value (a rating, or a count for implicit feedback).
    n_users, n_items : int
        The matrix shape (users or items without any observation are allowed).
    timestamps : (nnz,) int64 array or None
        When each observation was made (needed by the split by time).
    """

    users: NDArray[np.int64]
    items: NDArray[np.int64]
    values: NDArray[np.float64]
    n_users: int
    n_items: int
    timestamps: NDArray[np.int64] | None = None

    @property
    def nnz(self) -> int:
        """Number of observations."""
        return int(self.users.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_users, n_items)``."""
        return (self.n_users, self.n_items)

    def csr(self) -> scipy.sparse.csr_matrix:
        """The observations as a CSR matrix (users × items; duplicates are summed)."""
        import scipy.sparse

        return scipy.sparse.csr_matrix((self.values, (self.users, self.items)),
                                       shape=self.shape)

    def subset(self, mask: NDArray[np.bool_]) -> Interactions:
        """The observations where ``mask`` is true, in the same matrix shape."""
        ts = None if self.timestamps is None else self.timestamps[mask]
        return Interactions(self.users[mask], self.items[mask], self.values[mask],
                            self.n_users, self.n_items, ts)


def as_interactions(R: Any, name: str = "R") -> Interactions:
    """Validate ``R`` and return it as :class:`Interactions`.

    Parameters
    ----------
    R : Interactions or SciPy sparse matrix
        Observed entries; for a sparse matrix the stored entries are the observations
        (explicit zeros included).
    name : str
        The argument's name, for error messages.

    Returns
    -------
    Interactions

    Raises
    ------
    TypeError
        If ``R`` is neither (a dense array is refused: its zeros would be ambiguous).
    ValueError
        If the matrix is empty, an index is out of range or a value is not finite.
    """
    import scipy.sparse

    if isinstance(R, Interactions):
        users = np.asarray(R.users, dtype=np.int64)
        items = np.asarray(R.items, dtype=np.int64)
        values = np.asarray(R.values, dtype=np.float64)
        n_users, n_items, ts = int(R.n_users), int(R.n_items), R.timestamps
        if not users.shape == items.shape == values.shape or users.ndim != 1:
            raise ValueError(f"{name}: users, items and values must be 1-D and of equal length; "
                             f"got shapes {users.shape}, {items.shape}, {values.shape}")
    elif scipy.sparse.issparse(R):
        coo = scipy.sparse.coo_matrix(R)
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        values = coo.data.astype(np.float64)
        n_users, n_items = coo.shape
        ts = None
    else:
        raise TypeError(f"{name} must be Interactions or a SciPy sparse matrix (users × items); "
                        f"got {type(R).__name__}")
    if n_users < 1 or n_items < 1:
        raise ValueError(f"{name} is empty: shape ({n_users}, {n_items})")
    if users.size == 0:
        raise ValueError(f"{name} has no observed entries")
    if users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items:
        raise ValueError(f"{name}: an index lies outside the shape ({n_users}, {n_items})")
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{name}: observed value {values[bad]} at (user {users[bad]}, item "
                         f"{items[bad]}) is not finite")
    if ts is not None:
        ts = np.asarray(ts, dtype=np.int64)
    return Interactions(users, items, values, n_users, n_items, ts)


def top_k(scores: NDArray[np.floating], k: int) -> NDArray[np.int64]:
    """Indices of the ``k`` largest entries of each row of ``scores``, best first.

    Entries equal to ``-inf`` (filtered items) are never among them while ``k`` does not
    exceed the finite entries of the row. Ties are broken by the lower index.

    Parameters
    ----------
    scores : (u, n) array
        One row of item scores per user.
    k : int
        How many items, ``1 <= k <= n``.

    Returns
    -------
    (u, k) int64 array
    """
    scores = np.asarray(scores)
    n = scores.shape[1]
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}]; got {k}")
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    # stable order: descending score, then ascending index
    order = np.lexsort((part, -vals), axis=1)
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


class MF(NamedTuple):
    r"""A factor model :math:`\hat r_{ui} = \mu + b_u + c_i + p_u^\top q_i`.

    Attributes
    ----------
    P : (n_users, k) float array
        User factors :math:`p_u` (rows).
    Q : (n_items, k) float array
        Item factors :math:`q_i` (rows).
    user_bias : (n_users,) float array or None
        :math:`b_u` (None: zero).
    item_bias : (n_items,) float array or None
        :math:`c_i` (None: zero).
    mean : float
        The global offset :math:`\mu`.
    """

    P: NDArray[np.floating]
    Q: NDArray[np.floating]
    user_bias: NDArray[np.floating] | None = None
    item_bias: NDArray[np.floating] | None = None
    mean: float = 0.0

    def predict(self, users: ArrayLike, items: ArrayLike) -> NDArray[np.float64]:
        """Predicted values at the pairs ``(users[t], items[t])``.

        Parameters
        ----------
        users, items : (t,) int arrays
            Equal-length indices.

        Returns
        -------
        (t,) float64 array
        """
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        if u.shape != i.shape:
            raise ValueError(f"users and items must have equal shapes; got {u.shape}, {i.shape}")
        out = np.einsum("tk,tk->t", self.P[u], self.Q[i]).astype(np.float64) + self.mean
        if self.user_bias is not None:
            out += self.user_bias[u]
        if self.item_bias is not None:
            out += self.item_bias[i]
        return out

    def scores(self, users: ArrayLike | None = None) -> NDArray[np.float64]:
        """Predicted values of every item for the given users (all users by default).

        Parameters
        ----------
        users : (u,) int array, optional

        Returns
        -------
        (u, n_items) float64 array
        """
        u = np.arange(self.P.shape[0]) if users is None else np.asarray(users, dtype=np.int64)
        out = (self.P[u] @ self.Q.T).astype(np.float64) + self.mean
        if self.user_bias is not None:
            out += self.user_bias[u][:, None]
        if self.item_bias is not None:
            out += self.item_bias[None, :]
        return out

    def reconstruct(self) -> NDArray[np.float64]:
        """The full completed matrix (n_users × n_items)."""
        return self.scores()

    def recommend(self, users: ArrayLike, k: int = 10, *,
                  exclude: Any = None) -> NDArray[np.int64]:
        """The ``k`` best-scored items for each user, best first.

        Parameters
        ----------
        users : (u,) int array
        k : int
            Items per user.
        exclude : Interactions or SciPy sparse matrix, optional
            Items already seen (for example the training set); they are never recommended.

        Returns
        -------
        (u, k) int64 array
        """
        u = np.asarray(users, dtype=np.int64)
        s = self.scores(u)
        if exclude is not None:
            mask_seen(s, u, exclude)
        return top_k(s, k)


def mask_seen(scores: NDArray[np.floating], users: NDArray[np.int64], seen: Any) -> None:
    """Set ``scores[j, i] = -inf`` where user ``users[j]`` has seen item ``i`` (in place).

    Parameters
    ----------
    scores : (u, n_items) float array
    users : (u,) int array
        The user of each row of ``scores``.
    seen : Interactions or SciPy sparse matrix
        The seen entries.
    """
    X = as_interactions(seen, "exclude").csr()
    sub = X[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf

