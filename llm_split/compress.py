"""Encodings of the tensors that cross the cut: the activations sent up and their gradient sent down.

Split-learning systems shrink what crosses the cut by sending it in fewer bits.
Each encoding here is applied for real: the sender encodes, the receiver
decodes and computes on the decoded tensor (so training feels the rounding),
and the bytes counted are those of the encoded payload.

========================  ===============================================  ====================
encoding                  values sent                                      bytes for n values
========================  ===============================================  ====================
``float32``               as computed (no change)                          4 n
``float16``               rounded to IEEE half (10-bit mantissa)           2 n
``bfloat16``              rounded to bfloat16 (7-bit mantissa)             2 n
``int8_per_tensor``       ``q = round(x / s)``, ``s = max|x| / 127``       n + 4
``int8_per_token``        the same with one ``s`` per token (last axis)    n + 4 n / H
========================  ===============================================  ====================

The int8 encodings are symmetric absmax quantisation (as LLM.int8(), Dettmers
et al. 2022, without its outlier split): ``q`` in ``-127 .. 127`` and the
float32 scales travel with the values. Round to nearest keeps every element
within half a step, ``|x - s q| <= s / 2``, with ``s`` the element's scale. A
scale of zero (an all-zero tensor or token) is sent as is and decodes to zeros.
The half-precision roundings have relative error at most ``2^-11`` (float16,
within its normal range, about 6.1e-5 to 65504) and ``2^-8`` (bfloat16).
"""

from __future__ import annotations

import math

import torch

from cosim.errors import CosimError

CUT_DTYPES = ("float32", "float16", "bfloat16", "int8_per_tensor", "int8_per_token")
_HALF = {"float16": torch.float16, "bfloat16": torch.bfloat16}
_SCALE_BYTES = 4           # float32 scales
INT8_MAX = 127


def check_cut_dtype(cut_dtype: str) -> str:
    """``cut_dtype`` if it is one of :data:`CUT_DTYPES`, else a CosimError listing them."""
    if cut_dtype not in CUT_DTYPES:
        raise CosimError(f"cut dtype(={cut_dtype!r}) must be one of {', '.join(CUT_DTYPES)}")
    return cut_dtype


def encoded_nbytes(shape: tuple[int, ...], cut_dtype: str, *, element_size: int = 4) -> int:
    """Bytes of a tensor of ``shape`` sent as ``cut_dtype`` (``element_size``: bytes per value when float32
    means "as computed", e.g. 2 for a model run in half precision)."""
    n = math.prod(shape)
    if check_cut_dtype(cut_dtype) == "float32":
        return n * element_size
    if cut_dtype in _HALF:
        return 2 * n
    scales = 1 if cut_dtype == "int8_per_tensor" else n // shape[-1]
    return n + _SCALE_BYTES * scales


def int8_scales(x: torch.Tensor, cut_dtype: str) -> torch.Tensor:
    """The absmax scales of ``x``: shape () per tensor, or ``x.shape[:-1] + (1,)`` per token; float32."""
    a = x.detach().abs().float()
    absmax = a.amax() if cut_dtype == "int8_per_tensor" else a.amax(dim=-1, keepdim=True)
    return absmax / INT8_MAX


def roundtrip(x: torch.Tensor, cut_dtype: str) -> tuple[torch.Tensor, int]:
    """What the receiver gets when ``x`` is sent as ``cut_dtype``: the decoded tensor and the bytes sent.

    Parameters
    ----------
    x : Tensor (..., H)
        A hidden state (B, T, H) or its gradient; floating point.
    cut_dtype : str
        One of :data:`CUT_DTYPES`.

    Returns
    -------
    decoded : Tensor
        Same shape and dtype as ``x``, detached; ``x`` itself for ``float32``.
    nbytes : int
        Bytes of the encoded payload (:func:`encoded_nbytes`).
    """
    nbytes = encoded_nbytes(tuple(x.shape), cut_dtype, element_size=x.element_size())
    if cut_dtype == "float32":
        return x, nbytes
    if cut_dtype in _HALF:
        return x.detach().to(_HALF[cut_dtype]).to(x.dtype), nbytes
    scale = int8_scales(x, cut_dtype)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(x.detach().float() / safe).clamp_(-INT8_MAX, INT8_MAX).to(torch.int8)
    return (q.float() * scale).to(x.dtype), nbytes
