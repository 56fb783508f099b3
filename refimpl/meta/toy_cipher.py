r"""A toy cipher built from oblique projectors, after the demonstration in Karpowicz's
"The secret life of matrix factorizations".

.. warning::
   **This is not cryptography.** It is a linear-algebra demonstration. The map from
   ciphertext to plaintext is linear, so anyone who sees ``m·n`` plaintext/ciphertext pairs
   recovers it by least squares (:func:`known_plaintext_attack` does exactly that), and
   ciphertexts can be added and scaled to forge messages. Never use it to protect anything.

The secret key is four matrices: F (m×k), H (n×k) and test matrices B (m×k), D (n×k), giving
dual bases ``Y = B (FᵀB)⁻¹`` and ``X = D (HᵀD)⁻¹``. A k×k message block M is hidden as

.. math:: C = F M H^\top + (I - F Y^\top)\, N\, (I - X H^\top),

with N fresh Gaussian noise. The noise lies in the complements that the projectors remove,
so :math:`Y^\top C X = M` exactly, while C itself looks like a full-rank random matrix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from refimpl._typing import ArrayLike
from refimpl._validation import check_array, check_positive, check_positive_int, check_rank
from refimpl.meta.core import dual_basis
from refimpl.seeding import SeedLike, as_generator


class ToyKey(NamedTuple):
    """The secret key of the toy cipher (keep all four matrices secret).

    Attributes
    ----------
    F : (m, k) numpy.ndarray
        Column factor: a message block M enters the ciphertext as ``F M Hᵀ``.
    H : (n, k) numpy.ndarray
        Row factor.
    Y : (m, k) numpy.ndarray
        Dual basis of F (``Yᵀ F = I``) for its secret test matrix.
    X : (n, k) numpy.ndarray
        Dual basis of H (``Hᵀ X = I``).
    """

    F: np.ndarray
    H: np.ndarray
    Y: np.ndarray
    X: np.ndarray

    @property
    def block(self) -> int:
        """The message block size ``k`` (blocks are k×k)."""
        return self.F.shape[1]


def make_toy_key(m: int, n: int, k: int, *, seed: SeedLike = None) -> ToyKey:
    """A random key for k×k message blocks hidden in m×n ciphertexts (k < min(m, n)).

    Parameters
    ----------
    m, n : int
        Ciphertext block shape.
    k : int
        Message block size, ``1 <= k < min(m, n)`` (the rest is room for the noise).
    seed : int or numpy.random.Generator, optional
        Draws F, B, H, D.

    Returns
    -------
    ToyKey

    Raises
    ------
    ValueError
        If a size is out of range.
    TypeError
        If a size is not an integer.
    """
    m, n = check_positive_int(m, "m"), check_positive_int(n, "n")
    k = check_rank(k, "k", min(m, n) - 1, what="min(m, n) - 1 (room for the noise)")
    rng = as_generator(seed)
    F, B = rng.standard_normal((m, k)), rng.standard_normal((m, k))
    H, D = rng.standard_normal((n, k)), rng.standard_normal((n, k))
    return ToyKey(F, H, dual_basis(F, B, method="solve"), dual_basis(H, D, method="solve"))


def toy_encrypt(M: ArrayLike, key: ToyKey, *, noise: float = 1.0,
                seed: SeedLike = None) -> np.ndarray:
    """Hide message blocks M (..., k, k) in ciphertexts (..., m, n). Not secure.

    Parameters
    ----------
    M : (k, k) or (nblocks, k, k) numpy.ndarray
        Message blocks (e.g. from :func:`text_to_blocks`).
    key : ToyKey
        The secret key.
    noise : float
        Scale (``>= 0``) of the Gaussian noise N hidden in the projectors' complements.
    seed : int or numpy.random.Generator, optional
        Draws the noise.

    Returns
    -------
    numpy.ndarray
        Ciphertexts (..., m, n).

    Raises
    ------
    ValueError
        If the blocks do not fit the key or ``noise`` is negative.
    """
    M = check_array(M, "M", ndim=(2, 3), allow_torch=False)
    noise = check_positive(noise, "noise", allow_zero=True)
    k = key.block
    if M.shape[-2:] != (k, k):
        raise ValueError(f"M must have blocks of shape ({k}, {k}) for this key; got "
                         f"{M.shape}")
    rng = as_generator(seed)
    m, n = key.F.shape[0], key.H.shape[0]
    N = noise * rng.standard_normal((*M.shape[:-2], m, n))
    col_complement = np.eye(m) - key.F @ key.Y.T
    row_complement = np.eye(n) - key.X @ key.H.T
    return key.F @ M @ key.H.T + col_complement @ N @ row_complement


def toy_decrypt(C: ArrayLike, key: ToyKey) -> np.ndarray:
    """Recover the blocks: ``Yᵀ C X``.

    Parameters
    ----------
    C : (m, n) or (nblocks, m, n) numpy.ndarray
        Ciphertexts.
    key : ToyKey
        The key they were encrypted with.

    Returns
    -------
    numpy.ndarray
        Message blocks (..., k, k).

    Raises
    ------
    ValueError
        If the ciphertexts do not fit the key.
    """
    C = check_array(C, "C", ndim=(2, 3), allow_torch=False)
    want = (key.F.shape[0], key.H.shape[0])
    if C.shape[-2:] != want:
        raise ValueError(f"C must have blocks of shape {want} for this key; got {C.shape}")
    return key.Y.T @ C @ key.X


def text_to_blocks(text: str, k: int) -> np.ndarray:
    """UTF-8 bytes of ``text`` as float blocks (nblocks, k, k), zero-padded.

    Parameters
    ----------
    text : str
        The message.
    k : int
        Block size (``>= 1``).

    Returns
    -------
    numpy.ndarray
        (nblocks, k, k) floats holding the byte values 0..255.

    Raises
    ------
    TypeError
        If ``text`` is not a str or ``k`` not an integer.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}")
    k = check_positive_int(k, "k")
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(float)
    nblocks = max(1, -(-data.size // (k * k)))
    out = np.zeros(nblocks * k * k)
    out[: data.size] = data
    return out.reshape(nblocks, k, k)


def blocks_to_text(blocks: ArrayLike) -> str:
    """Inverse of :func:`text_to_blocks` (rounds to bytes, drops the zero padding).

    Parameters
    ----------
    blocks : (k, k) or (nblocks, k, k) numpy.ndarray
        Decrypted blocks.

    Returns
    -------
    str
        The text (invalid UTF-8 replaced by U+FFFD).
    """
    blocks = check_array(blocks, "blocks", ndim=(2, 3), allow_torch=False)
    data = np.clip(np.rint(blocks).ravel(), 0, 255).astype(np.uint8).tobytes()
    return data.rstrip(b"\0").decode("utf-8", errors="replace")


def known_plaintext_attack(messages: ArrayLike,
                           ciphertexts: ArrayLike) -> Callable[[np.ndarray], np.ndarray]:
    r"""Break the toy cipher from plaintext/ciphertext pairs, without the key.

    Decryption is linear: :math:`\mathrm{vec}(M) = (X^\top \otimes Y^\top)\,\mathrm{vec}(C)`.
    Given pairs (M_i, C_i), the attacker solves for that k²×mn matrix by least squares;
    with ``m·n`` generic pairs it is determined exactly.

    Parameters
    ----------
    messages : (npairs, k, k) numpy.ndarray
        Known plaintext blocks.
    ciphertexts : (npairs, m, n) numpy.ndarray
        Their encryptions.

    Returns
    -------
    callable
        ``decrypt(cipher)`` mapping ciphertexts (..., m, n) to blocks (..., k, k).

    Raises
    ------
    ValueError
        If messages and ciphertexts do not pair up.
    """
    M = check_array(messages, "messages", ndim=3, allow_torch=False)
    C = check_array(ciphertexts, "ciphertexts", ndim=3, allow_torch=False)
    if M.shape[0] != C.shape[0]:
        raise ValueError(f"messages and ciphertexts must pair up; got {M.shape[0]} and "
                         f"{C.shape[0]}")
    k, shape = M.shape[1], C.shape[1:]
    L, *_ = np.linalg.lstsq(C.reshape(C.shape[0], -1), M.reshape(M.shape[0], -1), rcond=None)

    def decrypt(cipher):
        cipher = check_array(cipher, "cipher", ndim=(2, 3), allow_torch=False)
        if cipher.shape[-2:] != shape:
            raise ValueError(f"cipher must have blocks of shape {shape}; got {cipher.shape}")
        flat = cipher.reshape(-1, shape[0] * shape[1]) @ L
        return flat.reshape(*cipher.shape[:-2], k, k)

    return decrypt
