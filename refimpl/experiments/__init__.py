"""The experiment harness shared by the chapters: corpora, small models, training, probes.

- :mod:`~refimpl.experiments.corpora`: text every machine has, read from the running
  Python's standard library (:func:`stdlib_bytes`, :func:`stdlib_chars`,
  :func:`stdlib_snippets`, :func:`stdlib_docstrings`), :func:`split_corpus` and seeded
  batches (:func:`random_windows`, :func:`lm_batch`);
- :mod:`~refimpl.experiments.models`: :class:`TinyLM` (a decoder whose attention variant is
  a parameter), :class:`CharMLP` (a fixed-context character model) and
  :class:`SnippetClassifier`;
- :mod:`~refimpl.experiments.training`: one training step (:class:`Trainer`) and one loop
  (:func:`fit`, with a progress bar and periodic evaluation, returning a
  :class:`TrainResult`); :func:`evaluate_lm`, :func:`perplexity`;
- :mod:`~refimpl.experiments.recipes`: the chapter recipes on that loop, :func:`train_lm`,
  :func:`compare_variants` and :func:`fit_classifier`;
- :mod:`~refimpl.experiments.pretrained`: :func:`load_minilm` (the packaged MiniLM encoder,
  loaded offline) and :class:`MeanPooledClassifier`;
- :mod:`~refimpl.experiments.probes`: :func:`median_time`, :func:`cpu_peak_memory`,
  :func:`prefilled_decode_step` and :func:`machine` (what a measurement ran on).

Importing this subpackage imports torch (and :mod:`refimpl.attention`).
"""

from refimpl.experiments.corpora import (
    lm_batch,
    package_files,
    random_windows,
    split_corpus,
    stdlib_bytes,
    stdlib_chars,
    stdlib_docstrings,
    stdlib_snippets,
)
from refimpl.experiments.models import CharMLP, SnippetClassifier, TinyLM
from refimpl.experiments.pretrained import MeanPooledClassifier, load_minilm
from refimpl.experiments.probes import (
    cpu_peak_memory,
    machine,
    median_time,
    prefilled_decode_step,
)
from refimpl.experiments.recipes import compare_variants, fit_classifier, train_lm
from refimpl.experiments.training import (
    Trainer,
    TrainResult,
    cross_entropy,
    evaluate_lm,
    fit,
    perplexity,
)

__all__ = [
    "CharMLP",
    "MeanPooledClassifier",
    "SnippetClassifier",
    "TinyLM",
    "TrainResult",
    "Trainer",
    "compare_variants",
    "cpu_peak_memory",
    "cross_entropy",
    "evaluate_lm",
    "fit",
    "fit_classifier",
    "lm_batch",
    "load_minilm",
    "machine",
    "median_time",
    "package_files",
    "perplexity",
    "prefilled_decode_step",
    "random_windows",
    "split_corpus",
    "stdlib_bytes",
    "stdlib_chars",
    "stdlib_docstrings",
    "stdlib_snippets",
    "train_lm",
]
