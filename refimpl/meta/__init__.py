"""Chapter 01: meta-factorization, hidden projectors and what they are good for.

- :mod:`refimpl.meta.core`: dual bases, oblique projectors, the reconstruction equation;
- :mod:`refimpl.meta.instances`: CPQR, SVD and UTV/ULV (orthonormal factors) rebuilt from
  :func:`meta_factorize`;
- :mod:`refimpl.meta.skeletons`: generalized Nyström, CUR and the Moore–Penrose pseudoinverse
  (interpolatory and sketched factors) rebuilt from :func:`meta_factorize`;
- :mod:`refimpl.meta.projectors`: the projectors hidden in LU, QR, SVD and CUR, and linear
  matrix equations solved with them;
- :mod:`refimpl.meta.toy_cipher`: a toy encryption by projectors (not secure; see there).
"""

from refimpl.meta.core import (
    MetaFactorization,
    dual_basis,
    meta_factorize,
    oblique_projector,
    projector_residual,
)
from refimpl.meta.instances import UTV, CPQRMeta, SVDMeta, cpqr_meta, svd_meta, ulv, utv
from refimpl.meta.projectors import (
    HiddenProjectors,
    MatrixEquationSolution,
    generalized_inverse,
    hidden_projectors,
    solve_matrix_equation,
)
from refimpl.meta.skeletons import CUR, Nystrom, PinvMeta, cur, generalized_nystrom, pinv_meta
from refimpl.meta.toy_cipher import (
    ToyKey,
    blocks_to_text,
    known_plaintext_attack,
    make_toy_key,
    text_to_blocks,
    toy_decrypt,
    toy_encrypt,
)

__all__ = [
    "CUR", "UTV", "CPQRMeta", "HiddenProjectors", "MatrixEquationSolution", "MetaFactorization",
    "Nystrom", "PinvMeta", "SVDMeta", "ToyKey", "blocks_to_text", "cpqr_meta", "cur",
    "dual_basis", "generalized_inverse", "generalized_nystrom", "hidden_projectors",
    "known_plaintext_attack", "make_toy_key", "meta_factorize", "oblique_projector",
    "pinv_meta", "projector_residual", "solve_matrix_equation", "svd_meta", "text_to_blocks",
    "toy_decrypt", "toy_encrypt", "ulv", "utv",
]
