"""Byte accounting: the least bytes a loss call must move (DESIGN.md 3); the forms and dtypes measured."""

from __future__ import annotations

import math

from .._registry import LossSpec

# Public benchmark form name -> suffix of the public function (DESIGN 1).
FORMS = {"forward": "", "backward": "_grad", "fused": "_with_grad"}
DTYPES = ("float32", "bfloat16", "float16", "float64")
ITEMSIZE = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}
_TARGET_INDEX_BYTES = 8  # rowwise class indices reach the kernel as int64 (_problem.class_target)


def bytes_moved(spec: LossSpec, form: str, shape: tuple[int, ...], dtype: str) -> int:
    """Least bytes one call must move between memory and the core (DESIGN.md 3).

    With s = bytes per input element, n = input elements, R = rows (n / C):

    - rowwise   forward:          n*s + 8*R        read logits + read int64 class indices
    - rowwise   backward, fused:  2*n*s + 8*R      ... + write the gradient
    - logit targets (softmax_kl_div): as pointwise (the teacher's logits have the input's shape)
    - pointwise forward:          2*n*s            read input + read target (input's dtype)
    - pointwise backward, fused:  3*n*s            ... + write the gradient

    The loss itself (a scalar for reduction="mean") and option vectors of C values are O(R + C)
    and not counted. fp32 fused cross-entropy is thus 8 B/element (+8 B/row), pointwise 12 B/element.
    """
    n = math.prod(shape)
    s = ITEMSIZE[dtype]
    writes = 0 if form == "forward" else 1
    if spec.logit_targets:  # read logits + read the teacher's logits (+ write the gradient)
        return n * s * (2 + writes)
    if spec.rowwise:
        rows = n // shape[-1] if shape[-1] else 0
        return n * s * (1 + writes) + _TARGET_INDEX_BYTES * rows
    return n * s * (2 + writes)
