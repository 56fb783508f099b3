"""Chapter 03: randomized and sketching methods.

- :mod:`refimpl.sketch.rsvd`: randomized range finder and randomized SVD (returning the
  package's one SVD type, :class:`refimpl.linalg.TruncatedSVD`);
- :mod:`refimpl.sketch.sketches`: Gaussian, SRHT (with a fast Walsh–Hadamard transform) and
  CountSketch;
- :mod:`refimpl.sketch.selection`: leverage scores, interpolative decomposition, DEIM, CUR
  (delegating the middle factor to :func:`refimpl.meta.cur`) and Nyström for PSD matrices;
- :mod:`refimpl.sketch.applications`: coordinated sampling for ``AᵀB``, CUR-based kNN for an
  expensive scorer, and updating a truncated SVD.
"""

from refimpl.sketch.applications import (
    CoordinatedSketch,
    CURkNN,
    coordinated_sample_product,
    coordinated_sketch,
    cur_knn,
    estimate_product,
    update_truncated_svd,
)
from refimpl.sketch.rsvd import randomized_range_finder, randomized_svd
from refimpl.sketch.selection import (
    InterpolativeDecomposition,
    NystromPSD,
    cur,
    deim,
    interpolative_decomposition,
    leverage_scores,
    nystrom_psd,
)
from refimpl.sketch.sketches import countsketch, fwht, gaussian_sketch, srht

__all__ = [
    "CURkNN", "CoordinatedSketch", "InterpolativeDecomposition", "NystromPSD",
    "coordinated_sample_product", "coordinated_sketch", "countsketch", "cur", "cur_knn", "deim",
    "estimate_product", "fwht", "gaussian_sketch", "interpolative_decomposition",
    "leverage_scores", "nystrom_psd", "randomized_range_finder", "randomized_svd", "srht",
    "update_truncated_svd",
]
