"""Chapter 04: nonnegative factorizations.

- :mod:`refimpl.nonneg.nmf`: NMF by Lee–Seung multiplicative updates (Frobenius and
  generalised KL) and by HALS (a compiled Numba sweep), weighted/masked NMF, semi-NMF
  (Ding, Li & Jordan) and NNDSVD initialisation (Boutsidis & Gallopoulos).
- :mod:`refimpl.nonneg.nbmf` (tier B): nonnegative × binary factorization of a partly observed
  matrix (NBMF), the binary factor by exhaustive search at small rank or simulated annealing.
- :mod:`refimpl.nonneg.unmixing` (tier B): structured sparse NMF for hyperspectral unmixing
  (ℓ1 and graph-Laplacian regularised), a synthetic scene with known endmembers and the
  spectral-angle and abundance-error metrics.
"""

from refimpl.nonneg.nbmf import NBMF, nbmf
from refimpl.nonneg.nmf import NMF, SemiNMF, nmf, nndsvd, semi_nmf
from refimpl.nonneg.unmixing import (
    SyntheticUnmixing,
    Unmixing,
    abundance_rmse,
    match_endmembers,
    normalize_abundances,
    pixel_graph,
    sad,
    structured_sparse_nmf,
    synthetic_unmixing,
)

__all__ = ["NBMF", "NMF", "SemiNMF", "SyntheticUnmixing", "Unmixing", "abundance_rmse",
           "match_endmembers", "nbmf", "nmf", "nndsvd", "normalize_abundances", "pixel_graph",
           "sad", "semi_nmf", "structured_sparse_nmf", "synthetic_unmixing"]
