"""Corpora every machine has (the Python standard library's own sources) and their batching.

Nothing is downloaded: the text is read from the directory of the running Python's ``os``
module, in a fixed order, so a corpus is deterministic on one Python version (and differs
slightly between versions). Token tensors are ``torch.int64``; batches are drawn with an
explicit seed or ``torch.Generator``.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from refimpl._typing import SeedLike
from refimpl._validation import check_choice, check_fraction, check_positive_int, check_tokens
from refimpl.seeding import as_generator, torch_generator


def _stdlib() -> Path:
    return Path(os.path.dirname(os.__file__))


def package_files(package: str, *, skip_tests: bool = True) -> list[Path]:
    """The ``*.py`` files of a standard-library package, directory by directory.

    Directories are visited in sorted order (``sorted(os.walk(...))``) and the files of each
    directory in sorted order.

    Parameters
    ----------
    package : str
        Name of a package of the running Python's standard library (``"json"``, ``"email"``).
    skip_tests : bool
        Leave out directories named ``test`` or ``tests``.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    ValueError
        If ``package`` is not a package directory of the standard library.
    """
    root = _stdlib() / package
    if not root.is_dir():
        raise ValueError(f"{package!r} is not a package of this Python's standard library")
    out = []
    for dirpath, _, files in sorted(os.walk(root)):
        if skip_tests and {"test", "tests"} & set(Path(dirpath).relative_to(_stdlib()).parts):
            continue
        out += [Path(dirpath) / f for f in sorted(files) if f.endswith(".py")]
    return out


def stdlib_bytes(max_bytes: int = 2_000_000) -> torch.Tensor:
    """Bytes of the Python standard library's top-level ``*.py`` files, in sorted order.

    Text every machine with Python has; the exact content depends on the Python version.

    Parameters
    ----------
    max_bytes : int
        Length of the corpus (at most the size of those files).

    Returns
    -------
    torch.Tensor
        ``int64`` byte values in ``[0, 256)``, shape ``(≤ max_bytes,)``.
    """
    max_bytes = check_positive_int(max_bytes, "max_bytes")
    out = bytearray()
    for path in sorted(_stdlib().glob("*.py")):
        out += path.read_bytes()
        if len(out) >= max_bytes:
            break
    return torch.frombuffer(out[:max_bytes], dtype=torch.uint8).long()


def stdlib_chars(package: str, max_chars: int | None = None) -> torch.Tensor:
    """ASCII codes of a standard-library package's sources (tests left out), for char models.

    The files of :func:`package_files` are read as UTF-8, joined with newlines and encoded as
    ASCII with every other character replaced by ``?``, so the vocabulary is 128 symbols.

    Parameters
    ----------
    package : str
        Name of a standard-library package.
    max_chars : int, optional
        Keep the first ``max_chars`` characters (default: all).

    Returns
    -------
    torch.Tensor
        ``int64`` codes in ``[0, 128)``.
    """
    text = "\n".join(p.read_text(encoding="utf-8") for p in package_files(package))
    data = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
    if max_chars is not None:
        data = data[:check_positive_int(max_chars, "max_chars")]
    return torch.from_numpy(data.astype(np.int64))


def stdlib_snippets(packages: tuple[str, ...] = ("email", "json", "asyncio", "xml"),
                    length: int = 96, per_class: int = 300,
                    seed: SeedLike = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A text-classification task from the Python standard library (no download).

    Draws ``per_class`` byte snippets of ``length`` from the sources of each stdlib package
    (its ``*.py`` files, tests included, in sorted order of their paths) and labels them by
    package. The exact snippets depend on the Python version.

    Parameters
    ----------
    packages : tuple of str
        The classes: names of standard-library packages.
    length : int
        Bytes per snippet.
    per_class : int
        Snippets per package.
    seed : int or numpy.random.Generator
        Draws the snippets' starts and the shuffle.

    Returns
    -------
    tuple of torch.Tensor
        ``(tokens (N, length) int64, labels (N,) int64)`` with ``N = len(packages)·per_class``,
        shuffled.

    Raises
    ------
    ValueError
        If a package is not in the standard library or has no more than ``length`` bytes.
    """
    length = check_positive_int(length, "length")
    per_class = check_positive_int(per_class, "per_class")
    rng = as_generator(seed)
    xs, ys = [], []
    for label, name in enumerate(packages):
        text = b"".join(p.read_bytes() for p in sorted(package_files(name, skip_tests=False)))
        if len(text) <= length:
            raise ValueError(f"package {name!r} has fewer than {length} bytes of source")
        starts = rng.integers(0, len(text) - length, size=per_class)
        xs.append(np.stack([np.frombuffer(text[s:s + length], dtype=np.uint8) for s in starts]))
        ys.append(np.full(per_class, label))
    X, y = np.concatenate(xs), np.concatenate(ys)
    order = rng.permutation(len(y))
    return torch.from_numpy(X[order].astype(np.int64)), torch.from_numpy(y[order].astype(np.int64))


def stdlib_docstrings(packages: Sequence[str], *, max_chars: int = 200,
                      seed: SeedLike = 0) -> tuple[list[str], torch.Tensor]:
    """A sentence-classification task: docstrings of standard-library packages, by package.

    The first paragraph of the docstring of every function, method and class in each
    package's sources (:func:`package_files`, tests left out), on one line, cut to
    ``max_chars`` characters, labelled by the package's position in ``packages``.

    Parameters
    ----------
    packages : sequence of str
        The classes, as for :func:`stdlib_snippets`.
    max_chars : int
        Longest kept text.
    seed : int or numpy.random.Generator
        Draws the shuffle.

    Returns
    -------
    tuple
        ``(texts, labels)``: a list of str and an ``int64`` tensor, in the same shuffled
        order.
    """
    max_chars = check_positive_int(max_chars, "max_chars")
    texts, labels = [], []
    for label, package in enumerate(packages):
        for path in package_files(package):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    doc = ast.get_docstring(node)
                    if doc:
                        texts.append(doc.split("\n\n")[0].replace("\n", " ")[:max_chars])
                        labels.append(label)
    order = as_generator(seed).permutation(len(texts))
    return [texts[i] for i in order], torch.tensor([labels[i] for i in order])


def split_corpus(data: torch.Tensor,
                 train_frac: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a token sequence into a leading training part and a held-out tail.

    Parameters
    ----------
    data : torch.Tensor
        Integer tokens ``(n,)``.
    train_frac : float
        Share of the tokens in the training part, in ``(0, 1)``; the first
        ``int(n · train_frac)`` tokens.

    Returns
    -------
    tuple of torch.Tensor
        ``(train, held_out)``, views of ``data``.

    Raises
    ------
    ValueError
        If either part would be empty.
    """
    check_tokens(data, "data", ndim=1)
    n = int(len(data) * check_fraction(train_frac, "train_frac"))
    if not 0 < n < len(data):
        raise ValueError(f"train_frac={train_frac} leaves an empty part of {len(data)} tokens")
    return data[:n], data[n:]


def random_windows(data: torch.Tensor, n: int, length: int,
                   seed: int | torch.Generator) -> torch.Tensor:
    """``n`` windows of ``length`` consecutive tokens at uniformly random starts.

    Parameters
    ----------
    data : torch.Tensor
        Integer tokens ``(N,)`` with ``N > length``.
    n : int
        Number of windows.
    length : int
        Tokens per window.
    seed : int or torch.Generator
        Draws the starts, uniform in ``[0, N − length)``.

    Returns
    -------
    torch.Tensor
        ``(n, length)``, same dtype as ``data``.

    Raises
    ------
    ValueError
        If ``data`` is not longer than ``length``.
    """
    check_tokens(data, "data", ndim=1)
    n, length = check_positive_int(n, "n"), check_positive_int(length, "length")
    if len(data) <= length:
        raise ValueError(f"data ({len(data)} tokens) must be longer than length={length}")
    starts = torch.randint(0, len(data) - length, (n,), generator=torch_generator(seed))
    return data[starts[:, None] + torch.arange(length)]


def lm_batch(data: torch.Tensor, batch_size: int, seq_len: int, seed: int | torch.Generator, *,
             targets: str = "all") -> tuple[torch.Tensor, torch.Tensor]:
    """A next-token batch: random windows of ``seq_len + 1`` tokens split into input and target.

    Parameters
    ----------
    data : torch.Tensor
        Integer tokens ``(N,)``.
    batch_size : int
        Windows in the batch.
    seq_len : int
        Input tokens per window.
    seed : int or torch.Generator
        Draws the windows (see :func:`random_windows`).
    targets : {"all", "last"}
        ``"all"``: the target of every input position (sequence models such as
        :class:`~refimpl.experiments.TinyLM`); ``"last"``: only the token after the window
        (fixed-context models such as :class:`~refimpl.experiments.CharMLP`).

    Returns
    -------
    tuple of torch.Tensor
        ``(inputs (batch_size, seq_len), targets (batch_size, seq_len) or (batch_size,))``.
    """
    check_choice(targets, "targets", ("all", "last"))
    w = random_windows(data, batch_size, check_positive_int(seq_len, "seq_len") + 1, seed)
    return w[:, :-1], (w[:, 1:] if targets == "all" else w[:, -1])
