"""``fastloss.torch`` drop-ins derived from the spec, for every loss without a PyTorch counterpart.

A loss PyTorch (or torchvision) has keeps PyTorch's name, signature, defaults and layout: its
adapter in ``functional.py`` is a fact about PyTorch, not about the loss. Every other loss of
``_spec.LOSSES`` gets, from its spec entry alone:

- ``functional.<name>(input, target, <options in spec order, with their defaults>,
  reduction="mean")``: class dim 1 for row-wise losses (0 for an unbatched (C,) input), the target
  of a difference loss broadcast to the input's shape; a ``class_vector`` option is a tensor (C,)
  (a number too where the spec says ``vector_or_scalar``), a ``broadcast_vector`` option a tensor
  of the input's shape or (C,) along the last axis;
- ``nn.Module`` ``<CamelName>`` holding the options (tensor options as buffers) and calling it.

The functions are written as source text and compiled, so they carry real signatures (and
``inspect``/``help`` show them) and cost one Python call, like the hand-written ones did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .. import _spec
from . import _ops
from ._names import class_name


def _default(opt: _spec.Opt) -> Any:
    return opt.choices[0] if opt.type == "choice" and opt.default is None else opt.default


def run(loss: _spec.Loss, input: Tensor, target: Tensor, reduction: str, options: dict[str, Any]) -> Tensor:
    """One call of ``_ops.apply`` with the options routed as the spec types them."""
    scalars, vector = {}, None
    for opt in loss.options:
        value = options[opt.name]
        if opt.type == "class_vector":
            if isinstance(value, Tensor):
                vector = value
                if opt.vector_or_scalar:
                    scalars[opt.name] = None
            elif opt.vector_or_scalar:
                scalars[opt.name] = None if value is None else float(value)
            elif value is not None:
                raise TypeError(f"fastloss.torch.{loss.name}: {opt.name} must be a tensor of one value per class "
                                f"or None, got {type(value).__name__}")
        else:
            scalars[opt.name] = value
    if loss.kind == _spec.ROWWISE:
        return _ops.apply(loss.name, input, target, reduction, vector=vector, axis=_ops.class_dim(input), **scalars)
    if loss.difference:
        input, target = _ops.same_shape_target(input, target)
    return _ops.apply(loss.name, input, target, reduction, vector=vector, axis=-1, **scalars)


def _docstring(loss: _spec.Loss) -> str:
    layout = ("class dim 1 (0 for an unbatched (C,) input); " if loss.kind == _spec.ROWWISE else
              "elementwise; ")
    lines = [f"``{loss.formula}`` ({layout}PyTorch has no such loss: fastloss's name and options).", ""]
    lines += [f"``{o.name}`` (default {_default(o)!r}): {o.doc}." for o in loss.options]
    lines.append('``reduction``: "none", "mean" or "sum"' + "".join(f', "{r}"' for r in loss.extra_reductions)
                 + f' ("mean" over {loss.mean_over.replace("_", " ")}).')
    return "\n".join(lines)


def functional(loss: _spec.Loss) -> Callable[..., Tensor]:
    """The functional drop-in of ``loss``, with its real signature."""
    params = [f"{o.name}={o.name}_default" for o in loss.options]
    names = ", ".join(f"{o.name!r}: {o.name}" for o in loss.options)
    source = (f"def {loss.name}(input, target, {''.join(p + ', ' for p in params)}reduction='mean'):\n"
              f"    return run(LOSS, input, target, reduction, {{{names}}})\n")
    namespace: dict[str, Any] = {"run": run, "LOSS": loss, **{f"{o.name}_default": _default(o) for o in loss.options}}
    exec(compile(source, f"<fastloss.torch: {loss.name} from _spec.py>", "exec"), namespace)  # noqa: S102
    fn = namespace[loss.name]
    fn.__module__ = "fastloss.torch.functional"
    fn.__qualname__ = loss.name
    fn.__doc__ = _docstring(loss)
    return fn


def module(loss: _spec.Loss, fn: Callable[..., Tensor]) -> type[nn.Module]:
    """The ``nn.Module`` drop-in: options as attributes, tensors among them as buffers."""
    names = [o.name for o in loss.options]
    params = ", ".join(f"{n}={n}_default" for n in names)
    source = (f"def __init__(self, {params + ', ' if params else ''}reduction='mean'):\n"
              f"    nn.modules.loss._Loss.__init__(self, reduction=reduction)\n"
              f"    _store(self, {{{', '.join(f'{n!r}: {n}' for n in names)}}})\n")
    namespace: dict[str, Any] = {"nn": nn, "_store": _store,
                                 **{f"{o.name}_default": _default(o) for o in loss.options}}
    exec(compile(source, f"<fastloss.torch: {class_name(loss)} from _spec.py>", "exec"), namespace)  # noqa: S102

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return fn(input, target, **{n: getattr(self, n) for n in names}, reduction=self.reduction)

    cls = type(class_name(loss), (nn.modules.loss._Loss,), {
        "__init__": namespace["__init__"], "forward": forward, "__module__": "fastloss.torch.modules",
        "__doc__": f"Module form of :func:`{loss.name}`: ``{loss.formula}``; tensor options are buffers."})
    return cls


def _store(self: nn.Module, options: dict[str, Any]) -> None:
    for name, value in options.items():
        if isinstance(value, Tensor):
            self.register_buffer(name, value)
        else:
            setattr(self, name, value)
