"""The public loss functions' docstrings, written from the loss table: formula, what the input and
the target must be, every option, what comes back, what raises, and a runnable example
(tests/test_docs.py runs every example)."""

from __future__ import annotations

from ._registry import LossSpec

_SUMMARY = {
    "loss": "The loss.",
    "grad": "The gradient of the loss w.r.t. ``{x}``, times ``grad_output``.",
    "with_grad": "The loss and its gradient w.r.t. ``{x}``, from one fused pass over the data.",
    "grad_hess": ("The gradient and the diagonal second derivative of the unreduced loss (reduction "
                  "'none') w.r.t. ``{x}``, from one fused pass, for gradient-boosting objectives."),
}

_MEAN = {
    "target_weight": "the sum of the target classes' weights w_t over the rows not ignored (PyTorch's rule; "
                     "soft targets: the number of rows)",
    "valid_rows": "the number of rows not ignored",
    "elements": "the number of elements",
}

_RETURNS = {
    "loss": "loss : a scalar (0-d) for 'mean'/'sum', an array of the loss's shape for 'none'; float32 for 16-bit "
            "inputs, else the input's dtype; the caller's array type",
    "grad": "grad : the gradient, of ``{x}``'s shape and dtype (``out`` itself when given)",
    "with_grad": "(loss, grad) : as ``{name}`` and ``{name}_grad`` return them",
    "grad_hess": "(grad, hess) : both of ``{x}``'s shape and dtype, times ``sample_weight`` (``out`` when given); "
                 "0 on linear pieces and at kinks",
}


def _target(spec: LossSpec) -> str:
    x = spec.input_name
    if spec.logit_targets:
        return f"float logits of ``{x}``'s shape (a teacher's)"
    if spec.rowwise:
        text = f"integer class indices (any integer dtype) of ``{x}``'s shape without the class axis"
        if spec.soft_targets:
            text += f", or float probabilities of ``{x}``'s shape (soft targets)"
        return text
    if spec.target_range is not None:
        text = f"floats in [{spec.target_range[0]:g}, {spec.target_range[1]:g}] of ``{x}``'s shape"
        return text + (", or integers/bools in " + str(set(spec.target_values)) if spec.target_values else "")
    if spec.target_values is not None:
        return f"values in {set(spec.target_values)} (floats, integers or bools) of ``{x}``'s shape"
    return f"floats of ``{x}``'s shape (no broadcasting)"


def _example_target(spec: LossSpec) -> str:
    if spec.logit_targets:
        return "rng.standard_normal((4, 5)).astype(np.float32)"
    if spec.rowwise:
        return "rng.integers(0, 5, size=4)"
    if spec.target_range is not None:
        lo, hi = spec.target_range
        hi = min(hi, lo + 1.0)  # a finite interval inside the domain
        return f"rng.uniform({lo:g}, {hi:g}, size=(4, 5)).astype(np.float32)"
    if spec.target_values is not None:
        return f"rng.choice(np.array({list(spec.target_values)}, np.float32), size=(4, 5))"
    return "rng.standard_normal((4, 5)).astype(np.float32)"


def example(spec: LossSpec, name: str, form: str) -> str:
    """A runnable example of the function (the doctest lines without their prompts)."""
    call = {
        "loss": f"loss = fl.{name}(x, t)",
        "grad": f"grad = fl.{name}(x, t)",
        "with_grad": f"loss, grad = fl.{name}(x, t)",
        "grad_hess": f"grad, hess = fl.{name}(x, t)",
    }[form]
    return "\n".join([
        "import numpy as np",
        "import fastloss as fl",
        "rng = np.random.default_rng(0)",
        "x = rng.standard_normal((4, 5)).astype(np.float32)",
        f"t = {_example_target(spec)}",
        call,
    ])


def docstring(spec: LossSpec, form: str, name: str, formula_extra: str = "") -> str:
    x = spec.input_name
    lines = [_SUMMARY[form].format(x=x), "", f"    {spec.formula}", "", "Parameters", "----------"]
    kind = "class axis ``axis``" if spec.rowwise else "any shape"
    lines.append(f"{x} : float32, float64, float16 or bfloat16 array ({kind}); NumPy, or any ``__dlpack__`` array")
    lines.append(f"target : {_target(spec)}")
    if form in ("grad", "with_grad"):
        lines.append("grad_output : the gradient of the loss: a scalar for 'mean'/'sum', a scalar or an array of "
                     "the loss's shape for 'none' (default 1.0)")
        lines.append(f"out : an array of ``{x}``'s shape and dtype to write the gradient into; ``out={x}`` (the "
                     "very same array) computes it in place (default None). A call interrupted by Ctrl-C "
                     "(KeyboardInterrupt) leaves ``out`` partly written: in place, part of the input is "
                     "already overwritten by the gradient")
    if form == "grad_hess":
        lines.append("sample_weight : one weight per loss element (per row for row-wise losses), multiplying "
                     "grad and hess (default None)")
        lines.append("out : a pair (grad, hess) of arrays of the input's shape and dtype to write into, "
                     "overlapping neither the inputs nor each other (default None); partly written after "
                     "Ctrl-C (KeyboardInterrupt)")
    for o in spec.options:
        lines.append(f"{o.name} : {o.doc} (default {o.default!r})")
    if spec.rowwise:
        lines.append("axis : the class axis (default -1); any axis works without a transposing copy")
    if form != "grad_hess":
        lines.append(f"reduction : 'none' | 'mean' | 'sum' (default 'mean'); 'mean' divides by {_MEAN[spec.mean_over]}")
    lines += ["", "Returns", "-------", _RETURNS[form].format(x=x, name=spec.name)]
    lines += ["", "Raises", "------",
              f"TypeError : a non-float ``{x}``, a target of the wrong kind, an option of the wrong type",
              ("ValueError : shapes that do not match, a target out of range or outside the loss's domain, an "
               "unknown reduction or option value, a bad ``out``")]
    lines += ["", "Example", "-------"] + [f">>> {line}" for line in example(spec, name, form).splitlines()]
    return "\n".join(lines) + "\n"
