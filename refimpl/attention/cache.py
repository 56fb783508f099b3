"""The decoding cache: named per-token tensors appended along the sequence axis."""

from __future__ import annotations

import math

import torch

from refimpl._validation import check_positive_int


class KVCache:
    """What an attention layer keeps per generated token, with its size.

    ``fields`` maps a name to the per-token shape of what is stored (for MHA
    ``{"k": (n_h, d_h), "v": (n_h, d_h)}``, for MLA ``{"c_kv": (d_c,), "k_rope": (d_h^R,)}``).
    Storage is allocated at the first :meth:`append` (taking its batch size, dtype and
    device) and grows by doubling, so decoding ``T`` tokens costs ``O(T)`` copies in total.

    Sizes (:attr:`elements_per_token`, :meth:`numel`, :meth:`nbytes`) count the tokens held,
    not the spare capacity.

    Parameters
    ----------
    fields : dict of str to tuple of int
        Field name → per-token shape (every size ≥ 1); at least one field.

    Raises
    ------
    ValueError, TypeError
        If ``fields`` is empty or a size is not a positive integer.
    """

    def __init__(self, fields: dict[str, tuple[int, ...]]) -> None:
        if not fields:
            raise ValueError("a cache needs at least one field")
        self.fields = {name: tuple(check_positive_int(s, f"size of cache field {name!r}")
                                   for s in shape)
                       for name, shape in fields.items()}
        self.length = 0
        self._buffers: dict[str, torch.Tensor] = {}

    @property
    def elements_per_token(self) -> int:
        """Elements stored per token (per sequence in the batch, per layer)."""
        return sum(math.prod(shape) for shape in self.fields.values())

    @property
    def batch_size(self) -> int:
        """Sequences in the batch (0 before the first :meth:`append`)."""
        return next(iter(self._buffers.values())).shape[0] if self._buffers else 0

    def numel(self) -> int:
        """Elements held: batch · length · elements_per_token.

        Returns
        -------
        int
        """
        return self.batch_size * self.length * self.elements_per_token

    def nbytes(self) -> int:
        """Bytes held (numel times the element size of the stored dtype).

        Returns
        -------
        int
            0 before the first :meth:`append`.
        """
        if not self._buffers:
            return 0
        return self.numel() * next(iter(self._buffers.values())).element_size()

    def append(self, **new: torch.Tensor) -> dict[str, torch.Tensor]:
        """Add ``T`` tokens to every field and return views of everything held.

        Parameters
        ----------
        **new : torch.Tensor
            One tensor per field, ``(B, T, *shape)``, all with the same ``B`` and ``T`` (the
            first append fixes ``B``, the dtype and the device).

        Returns
        -------
        dict of str to torch.Tensor
            Field name → ``(B, length, *shape)`` view of the cached tokens, the new ones last.

        Raises
        ------
        ValueError
            If the fields, shapes, token counts or batch size do not match.
        """
        if set(new) != set(self.fields):
            raise ValueError(
                f"append needs exactly the fields {sorted(self.fields)}; got {sorted(new)}")
        T = None
        for name, t in new.items():
            if tuple(t.shape[2:]) != self.fields[name] or t.ndim != 2 + len(self.fields[name]):
                raise ValueError(
                    f"{name} must have shape (B, T, {', '.join(map(str, self.fields[name]))}); "
                    f"got {tuple(t.shape)}"
                )
            if T is None:
                T = t.shape[1]
            elif t.shape[1] != T:
                raise ValueError("all fields must append the same number of tokens")
            if self._buffers and t.shape[0] != self.batch_size:
                raise ValueError(
                    f"batch size {t.shape[0]} differs from the cache's {self.batch_size}")
        end = self.length + T  # type: ignore[operator]  # T is set: fields is never empty
        for name, t in new.items():
            buf = self._buffers.get(name)
            if buf is None or buf.shape[1] < end:
                capacity = max(end, 2 * (buf.shape[1] if buf is not None else 0), 16)
                grown = t.new_empty((t.shape[0], capacity, *self.fields[name]))
                if buf is not None:
                    grown[:, : self.length] = buf[:, : self.length]
                buf = self._buffers[name] = grown
            buf[:, self.length:end] = t
        self.length = end
        return {name: buf[:, :end] for name, buf in self._buffers.items()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={v}" for k, v in self.fields.items())
        return (f"KVCache({shapes}; {self.elements_per_token} elements/token, "
                f"length={self.length}, {self.nbytes()} bytes)")
