"""Chapter 06: tensor decompositions.

The primitives that other chapters already use live here: the tensor train of a matrix
(:func:`mpo_decompose`, a matrix product operator, used by DoTA), the nearest sum of Kronecker
products (:func:`kron_svd`, used by SoKA) and the Tucker-2 form of a stack of matrices
(:func:`tucker2`, the form of LoTR's update). Each returns a ``NamedTuple`` with
``reconstruct()``; NumPy in → NumPy out, torch in → torch out.

Modules: :mod:`~refimpl.tensor.tt` (MPO / TT-SVD), :mod:`~refimpl.tensor.kronecker`
(Kronecker-product SVD), :mod:`~refimpl.tensor.tucker` (Tucker-2).
"""

from refimpl.tensor.kronecker import KronSVD, kron_shape, kron_sum, kron_svd
from refimpl.tensor.tt import MPO, mpo_decompose, mpo_modes
from refimpl.tensor.tucker import Tucker2, tucker2

__all__ = [
    "MPO",
    "KronSVD",
    "Tucker2",
    "kron_shape",
    "kron_sum",
    "kron_svd",
    "mpo_decompose",
    "mpo_modes",
    "tucker2",
]
