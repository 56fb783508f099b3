"""Configuration checks shared by the attention modules (integers, divisibility)."""

from __future__ import annotations

import sys

from refimpl._validation import check_rank


def positive_int(value, name: str) -> int:
    """An integer ≥ 1 (ranks, head counts, dimensions); raises naming ``name`` otherwise."""
    return check_rank(value, name, sys.maxsize, what="the largest integer")


def divides(small: int, small_name: str, big: int, big_name: str) -> None:
    if big % small:
        raise ValueError(
            f"{small_name}={small} must divide {big_name}={big} "
            f"({big} = {big // small}·{small} + {big % small})"
        )
