"""Chapter 02: classical decompositions.

So far: Householder QR with column pivoting (:func:`cpqr`), the kernel chapter 01's
CPQR meta-factorization is built on.
"""

from refimpl.linalg.qr import PivotedQR, cpqr

__all__ = ["PivotedQR", "cpqr"]
