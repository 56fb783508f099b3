"""The toy projector cipher: it round-trips, and it is breakable (as the book says)."""

import numpy as np
import pytest

from refimpl.meta import (
    blocks_to_text,
    known_plaintext_attack,
    make_toy_key,
    text_to_blocks,
    toy_decrypt,
    toy_encrypt,
)


def test_round_trip_text():
    key = make_toy_key(12, 10, 4, seed=0)
    text = "Projectors keep secrets — badly. ünïcödé too."
    C = toy_encrypt(text_to_blocks(text, 4), key, seed=1)
    assert C.shape[-2:] == (12, 10)
    assert blocks_to_text(toy_decrypt(C, key)) == text


def test_ciphertext_looks_full_rank_and_wrong_key_fails():
    key = make_toy_key(12, 10, 4, seed=0)
    M = text_to_blocks("sixteen chars!!!", 4)[0]
    C = toy_encrypt(M, key, seed=2)
    assert np.linalg.matrix_rank(C) == 10
    wrong = make_toy_key(12, 10, 4, seed=99)
    assert np.abs(toy_decrypt(C, wrong) - M).max() > 10


def test_known_plaintext_attack_recovers_the_decryption_map():
    key = make_toy_key(8, 7, 3, seed=3)
    rng = np.random.default_rng(4)
    pairs = rng.integers(0, 256, size=(8 * 7, 3, 3)).astype(float)
    C = toy_encrypt(pairs, key, seed=5)
    crack = known_plaintext_attack(pairs, C)
    secret = text_to_blocks("secret!!!", 3)
    np.testing.assert_allclose(crack(toy_encrypt(secret, key, seed=6)), secret, atol=1e-6)


def test_malleable():
    key = make_toy_key(9, 9, 3, seed=7)
    M1, M2 = np.eye(3), np.arange(9.0).reshape(3, 3)
    C = toy_encrypt(M1, key, seed=8) + 2 * toy_encrypt(M2, key, seed=9)
    np.testing.assert_allclose(toy_decrypt(C, key), M1 + 2 * M2, atol=1e-9)


def test_bad_input():
    key = make_toy_key(6, 6, 2, seed=0)
    with pytest.raises(ValueError, match=r"M must have blocks of shape \(2, 2\)"):
        toy_encrypt(np.ones((3, 3)), key)
    with pytest.raises(ValueError, match="k=6 exceeds"):
        make_toy_key(6, 6, 6)
    with pytest.raises(ValueError, match="m must be at least 1"):
        make_toy_key(0, 6, 2)
    with pytest.raises(TypeError, match="k must be an integer"):
        text_to_blocks("abc", 2.0)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        toy_encrypt(np.ones((2, 2)), key, noise=-1.0)
    with pytest.raises(TypeError, match="text must be a str"):
        text_to_blocks(b"bytes", 2)
    with pytest.raises(ValueError, match="messages and ciphertexts must pair up"):
        known_plaintext_attack(np.ones((2, 2, 2)), np.ones((3, 6, 6)))
