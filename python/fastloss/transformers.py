"""Hugging Face causal LMs trained with fastloss's fused head: ``fastloss.transformers.apply(model)``.

After ``apply(model)``, ``model(input_ids, labels=labels)`` (and ``transformers.Trainer``, unchanged)
computes the loss with :func:`fastloss.torch.linear_cross_entropy`: the (tokens, vocab) logits are
never built. The loss has HF's exact semantics (``ForCausalLMLoss``): labels shifted left by one
(or a given ``shift_labels``), ``ignore_index=-100``, the mean over non-ignored tokens or, when
``num_items_in_batch`` is given, ``sum / num_items_in_batch`` (HF's gradient-accumulation-correct
mean), the lm_head's bias and tied embeddings as they are, ``config.final_logit_softcapping`` as
fastloss's ``softcap``, and an fp32 loss for 16-bit models.

How it works, per instance and without touching the class: a forward pre-hook on the model notes
whether labels were given; a pre-hook on ``lm_head`` then keeps the hidden states and hands the head
zero positions, so the model's own forward runs unchanged (its own slicing, softcapping, kwargs) on
an empty logits tensor; the model's ``loss_function`` (an instance attribute, HF's own setter)
computes the fused loss from the kept hidden states with the arguments the model's forward gives it.
Without labels nothing changes: the head computes the logits as before (evaluation, ``generate``).

transformers itself is only imported when one of these functions is called: it stays an optional
dependency.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["apply", "is_applied", "revert"]

_STATE = "_fastloss_head"


@dataclass
class _HeadPatch:
    """What ``apply`` changed on one model, and the hidden states in flight between the hooks."""

    head: nn.Linear
    softcap: float | None
    signature: inspect.Signature
    hf_loss: Any
    had_own_loss: bool
    own_loss: Any
    chunk_size: int | None = None
    handles: list = field(default_factory=list)
    capturing: bool = False
    hidden: Tensor | None = None
    loss_done: bool = False


def _hf_causal_lm_loss():
    try:
        from transformers.loss.loss_utils import ForCausalLMLoss
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("fastloss.transformers needs the transformers package (pip install transformers)") from e
    return ForCausalLMLoss


def _base_model(model: nn.Module) -> nn.Module | None:
    getter = getattr(model, "get_decoder", None)
    if callable(getter):
        try:
            base = getter()
        except (AttributeError, NotImplementedError, TypeError):
            base = None
        if isinstance(base, nn.Module) and base is not model:
            return base
    for name in ("model", "transformer"):
        base = getattr(model, name, None)
        if isinstance(base, nn.Module):
            return base
    return None


def _text_config(model: nn.Module):
    config = getattr(model, "config", None)
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def _check_model(model: nn.Module):
    """The structure fastloss needs; a ValueError/TypeError naming what is missing otherwise."""
    name = type(model).__name__
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a Hugging Face causal LM (a torch.nn.Module), got {name}")
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if not isinstance(head, nn.Linear):
        raise TypeError(
            f"{name} has no linear lm_head: get_output_embeddings() returned {type(head).__name__}, "
            "fastloss.transformers needs an nn.Linear output layer"
        )
    if _base_model(model) is None:
        raise ValueError(
            f"{name} has no base model returning hidden states (looked for get_decoder(), .model, .transformer)"
        )
    signature = inspect.signature(model.forward)
    if "labels" not in signature.parameters:
        raise ValueError(f"{name}.forward takes no `labels` argument: not a causal LM fastloss can train")
    hf_loss = _hf_causal_lm_loss()
    loss = getattr(model, "loss_function", None)
    if loss is not hf_loss:
        raise ValueError(
            f"{name}.loss_function is {getattr(loss, '__name__', loss)!r}, not transformers' ForCausalLMLoss: "
            "fastloss.transformers replaces only that loss (set loss_type='ForCausalLM' or drop the custom one)"
        )
    for attr in ("logit_scale", "logits_scaling"):  # logits rescaled after the head (Cohere, Granite)
        if getattr(_text_config(model), attr, None) not in (None, 1, 1.0):
            raise ValueError(
                f"{name} rescales its logits after lm_head (config.{attr}); fastloss.transformers does not "
                "support that yet"
            )
    return head, signature, hf_loss


def is_applied(model: nn.Module) -> bool:
    """True when :func:`apply` has patched this model instance."""
    return isinstance(getattr(model, _STATE, None), _HeadPatch)


def apply(model: nn.Module, *, chunk_size: int | None = None) -> nn.Module:
    """Make ``model(..., labels=...)`` compute HF's causal-LM loss with the fused linear cross-entropy.

    ``model``: a Hugging Face causal LM (transformers 5.x) with a base model returning hidden states
    (``get_decoder()``, ``.model`` or ``.transformer``), an ``nn.Linear`` ``lm_head``
    (``get_output_embeddings()``) and HF's ``ForCausalLMLoss``. Patches this instance only (hooks and
    an instance ``loss_function``; other instances and the class are untouched) and returns it;
    applying twice patches once. The loss equals HF's::

        shift = labels[..., 1:] padded with -100 (or the given shift_labels)
        loss  = CE(softcap(h @ W.T + b), shift, ignore_index=-100, reduction="mean")      # or
              = CE(..., reduction="sum") / num_items_in_batch    # when num_items_in_batch is given

    with ``h`` the hidden states the model hands its ``lm_head`` (after ``logits_to_keep``), ``W`` and
    ``b`` the head's weight and bias (tied embeddings included), ``softcap`` from
    ``config.final_logit_softcapping``; fp32 for 16-bit models, as HF. With labels the returned
    output (same type, e.g. ``CausalLMOutputWithPast``) has ``logits=None``: they were never built
    (with ``return_dict=False`` the tuple has no logits entry, HF's rule for a None field). Without
    labels the forward is exactly the original and returns logits. Undo with :func:`revert`.

    ``chunk_size``: rows of hidden states per chunk of the fused head (default: from a memory budget,
    see :func:`fastloss.torch.linear_cross_entropy`); smaller chunks hold fewer logits at a time and
    cost time. Applying again to a patched model only sets ``chunk_size``.
    """
    from .torch.lm_head import check_chunk_size

    check_chunk_size(chunk_size)
    if is_applied(model):
        getattr(model, _STATE).chunk_size = chunk_size
        return model
    head, signature, hf_loss = _check_model(model)
    softcap = getattr(_text_config(model), "final_logit_softcapping", None)
    patch = _HeadPatch(
        head=head,
        softcap=float(softcap) if softcap else None,
        signature=signature,
        hf_loss=hf_loss,
        had_own_loss="_loss_function" in vars(model),
        own_loss=vars(model).get("_loss_function"),
        chunk_size=chunk_size,
    )

    def before_model(module, args, kwargs):
        patch.hidden, patch.loss_done = None, False
        patch.capturing = _labels_given(patch.signature, args, kwargs)

    def before_head(module, args):
        if not patch.capturing:
            return None
        (hidden,) = args
        patch.hidden = hidden
        return (hidden.narrow(-2, 0, 0),)  # zero positions: the model's own forward runs on empty logits

    def after_model(module, args, kwargs, output):
        if not patch.capturing:
            return None
        patch.capturing, patch.hidden = False, None
        if output is None:  # the forward raised (always_call): state reset, its exception goes on
            return None
        if not patch.loss_done:
            raise RuntimeError(
                f"fastloss.transformers: {type(module).__name__}.forward did not call self.loss_function with "
                "the logits of its lm_head; revert(model) and use its own loss"
            )
        return _without_logits(output)

    patch.handles = [
        model.register_forward_pre_hook(before_model, with_kwargs=True),
        head.register_forward_pre_hook(before_head),
        model.register_forward_hook(after_model, with_kwargs=True, always_call=True),
    ]
    model.loss_function = _fused_loss_function(patch)
    setattr(model, _STATE, patch)
    return model


def revert(model: nn.Module) -> nn.Module:
    """Undo :func:`apply` on this instance (hooks removed, its previous ``loss_function`` back)."""
    if not is_applied(model):
        raise ValueError(f"fastloss.transformers.apply was not applied to this {type(model).__name__}")
    patch = getattr(model, _STATE)
    for handle in patch.handles:
        handle.remove()
    if patch.had_own_loss:
        model._loss_function = patch.own_loss
    else:
        del model._loss_function
    delattr(model, _STATE)
    return model


def _labels_given(signature: inspect.Signature, args, kwargs) -> bool:
    if kwargs.get("labels") is not None:
        return True
    if not args:
        return False
    try:
        bound = signature.bind_partial(*args, **kwargs)
    except TypeError:  # the model's own forward reports the bad call
        return False
    return bound.arguments.get("labels") is not None


def _without_logits(output):
    """The model's output with ``logits`` None (they are an empty placeholder here)."""
    if isinstance(output, tuple):  # return_dict=False: (loss, logits, ...); HF's to_tuple drops a None field
        return output[:1] + output[2:]
    if hasattr(output, "logits"):
        return type(output)(**{k: v for k, v in output.items() if k != "logits"})
    return output


def _fused_loss_function(patch: _HeadPatch):
    def loss_function(
        logits,
        labels,
        vocab_size: int,
        num_items_in_batch: Tensor | int | None = None,
        ignore_index: int = -100,
        shift_labels: Tensor | None = None,
        **kwargs,
    ) -> Tensor:
        """HF's ``ForCausalLMLoss`` from the kept hidden states (fastloss's fused head, no logits)."""
        hidden = patch.hidden
        if hidden is None or not patch.capturing:  # called directly, on real logits: HF's own loss
            return patch.hf_loss(
                logits,
                labels,
                vocab_size,
                num_items_in_batch=num_items_in_batch,
                ignore_index=ignore_index,
                shift_labels=shift_labels,
                **kwargs,
            )
        patch.hidden, patch.loss_done = None, True
        return causal_lm_loss(
            hidden,
            patch.head.weight,
            labels,
            bias=patch.head.bias,
            softcap=patch.softcap,
            num_items_in_batch=num_items_in_batch,
            ignore_index=ignore_index,
            shift_labels=shift_labels,
            chunk_size=patch.chunk_size,
        )

    return loss_function


def causal_lm_loss(
    hidden: Tensor,
    weight: Tensor,
    labels: Tensor | None,
    *,
    bias: Tensor | None = None,
    softcap: float | None = None,
    num_items_in_batch: Tensor | int | None = None,
    ignore_index: int = -100,
    shift_labels: Tensor | None = None,
    chunk_size: int | None = None,
) -> Tensor:
    """HF's ``ForCausalLMLoss(hidden @ weight.T + bias, labels, ...)`` without the logits, in fp32.

    ``hidden`` (..., T, H) or (N, H); ``labels`` of its leading shape, shifted left by one with
    ``ignore_index`` padding at the end (HF: token t predicts token t+1), unless ``shift_labels``
    (already aligned with ``hidden``) is given. "mean" over non-ignored tokens, or
    ``sum / num_items_in_batch`` when that is given.
    """
    from .torch.lm_head import _linear_cross_entropy

    if shift_labels is None:
        if labels is None:
            raise ValueError("causal_lm_loss needs labels or shift_labels, got neither")
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    x = hidden.reshape(-1, hidden.shape[-1])
    target = shift_labels.reshape(-1).to(x.device)
    if target.shape[0] != x.shape[0]:
        raise ValueError(
            f"labels give {target.shape[0]} targets but the lm_head got {x.shape[0]} positions "
            f"(hidden states {tuple(hidden.shape)}; logits_to_keep with labels?)"
        )
    reduction = "mean" if num_items_in_batch is None else "sum"
    # fp32_loss: a 16-bit model's loss is not rounded to its dtype (HF computes it in fp32)
    loss = _linear_cross_entropy(
        x, weight, target, linear_bias=bias, ignore_index=ignore_index, softcap=softcap, reduction=reduction,
        chunk_size=chunk_size, fp32_loss=True,
    ).float()
    if num_items_in_batch is not None:
        if torch.is_tensor(num_items_in_batch):
            num_items_in_batch = num_items_in_batch.to(loss.device)
        loss = loss / num_items_in_batch
    return loss
