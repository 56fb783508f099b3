"""BLAS from compiled kernels, in place: SciPy's ``cython_blas`` through ``ctypes`` pointers.

Inside ``@njit`` code, ``np.dot`` always allocates its result, so an update such as
``C -= A @ B`` costs an extra pass over ``C``. The wrappers here call the Fortran routines
``xGEMM``, ``xTRSM``/``xTRMM`` and ``xGEMV`` of the BLAS SciPy links (the one its LAPACK
uses) directly on NumPy views. The function pointers come from
``scipy.linalg.cython_blas.__pyx_capi__`` and are passed to the kernels as ``ctypes``
functions (arguments, not globals, so that the kernels stay cacheable).

:func:`gemm`, :func:`trxm` and :func:`gemv` take NumPy views and read each as the
column-major matrix it is the transpose of (leading dimension: its row stride), so a
row-major view ``X`` *is* the column-major ``X^T`` and nothing is copied.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from numba import njit

from refimpl._typing import DTypeLike

_FUNCS: dict[str, Any] = {}


def blas(name):
    """``ctypes`` function for the Fortran BLAS routine ``name`` of SciPy's cython_blas."""
    fn = _FUNCS.get(name)
    if fn is None:
        import scipy.linalg.cython_blas as cython_blas

        capsule = cython_blas.__pyx_capi__[name]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
        nargs = {"gemm": 13, "trsm": 11, "trmm": 11, "gemv": 11}[name[1:]]
        fn = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))(address)
        _FUNCS[name] = fn
    return fn


def blas_for(dtype: DTypeLike, *names: str) -> tuple[Any, ...]:
    """The ``ctypes`` BLAS functions ``names`` (``"gemm"``, ...) for ``dtype``."""
    prefix = "s" if np.dtype(dtype) == np.float32 else "d"
    return tuple(blas(prefix + name) for name in names)


@njit(cache=True)
def gemm(fn, transa, transb, m, n, k, alpha, A, B, beta, C):
    """Column-major ``C = alpha op(A) op(B) + beta C`` (``C`` m x n), in place.

    ``A``, ``B``, ``C`` are views whose transposes are the column-major operands;
    ``transa``/``transb`` are ``ord("N")`` or ``ord("T")``.
    """
    if m == 0 or n == 0:
        return
    size = C.itemsize
    ints = np.array([m, n, k, max(1, A.strides[0] // size), max(1, B.strides[0] // size),
                     max(1, C.strides[0] // size)], dtype=np.int32)
    chars = np.array([transa, transb], dtype=np.uint8)
    scal = np.empty(2, dtype=C.dtype)
    scal[0] = alpha
    scal[1] = beta
    fn(chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes,
       scal[0:].ctypes, A.ctypes, ints[3:].ctypes, B.ctypes, ints[4:].ctypes,
       scal[1:].ctypes, C.ctypes, ints[5:].ctypes)


@njit(cache=True)
def trxm(fn, side, uplo, transa, diag, m, n, alpha, A, B):
    """Column-major ``xTRSM`` or ``xTRMM`` (same arguments), ``B`` m x n in place:
    ``B = alpha op(A)^{-1} B`` or ``alpha op(A) B`` (side L), ``B op(A)^{...}`` (side R);
    views read as in :func:`gemm`, options as ``ord`` of the letter."""
    if m == 0 or n == 0:
        return
    size = B.itemsize
    ints = np.array([m, n, max(1, A.strides[0] // size), max(1, B.strides[0] // size)],
                    dtype=np.int32)
    chars = np.array([side, uplo, transa, diag], dtype=np.uint8)
    scal = np.empty(1, dtype=B.dtype)
    scal[0] = alpha
    fn(chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes,
       ints[0:].ctypes, ints[1:].ctypes, scal.ctypes, A.ctypes, ints[2:].ctypes, B.ctypes,
       ints[3:].ctypes)


@njit(cache=True)
def gemv(fn, trans, m, n, alpha, A, x, beta, y):
    """Column-major ``y = alpha op(A) x + beta y`` (``A`` m x n, read as in :func:`gemm`);
    ``x`` and ``y`` are 1-D views of any stride."""
    if m == 0 or n == 0:
        return
    size = A.itemsize
    ints = np.array([m, n, max(1, A.strides[0] // size), x.strides[0] // size,
                     y.strides[0] // size], dtype=np.int32)
    chars = np.array([trans], dtype=np.uint8)
    scal = np.empty(2, dtype=A.dtype)
    scal[0] = alpha
    scal[1] = beta
    fn(chars.ctypes, ints[0:].ctypes, ints[1:].ctypes, scal[0:].ctypes, A.ctypes,
       ints[2:].ctypes, x.ctypes, ints[3:].ctypes, scal[1:].ctypes, y.ctypes, ints[4:].ctypes)


_N, _T, _L, _R, _U = ord("N"), ord("T"), ord("L"), ord("R"), ord("U")

# The only fast-math licences the compiled kernels take: reassociation (so that reductions
# vectorise) and fused multiply-adds; nothing that assumes inputs free of infinities or NaNs.
FASTMATH = {"reassoc", "contract"}
