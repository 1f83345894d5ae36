"""PyTorch as a competitor: the registry's losses written with torch, timed forward or forward + backward."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .cases import Case, Skip


def _torch_losses(opts: dict[str, Any]) -> dict[str, Callable]:
    import torch
    import torch.nn.functional as F

    def softmax_focal(x, t):
        if opts["alpha"] is not None:
            raise Skip("alpha is not None")
        valid = t != opts["ignore_index"]
        logp = F.log_softmax(x, dim=-1).gather(-1, t.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        loss = -((1 - logp.exp()) ** opts["gamma"]) * logp
        return (loss * valid).sum() / valid.sum()

    def sigmoid_focal(x, y):  # torchvision.ops.sigmoid_focal_loss's formula
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * (1 - p_t) ** opts["gamma"]
        if opts["alpha"] >= 0:
            loss = loss * (opts["alpha"] * y + (1 - opts["alpha"]) * (1 - y))
        return loss.mean()

    def hinge(s, y):
        h = torch.clamp(opts["margin"] - y * s, min=0)
        return (h * h if opts["squared"] else h).mean()

    def multiclass_hinge(s, t):
        if opts["weight"] is not None or opts["squared"]:
            raise Skip("weight/squared not mapped")
        if opts["variant"] == "weston_watkins":  # PyTorch's is weston_watkins divided by C
            return F.multi_margin_loss(s, t, margin=opts["margin"]) * s.shape[-1]
        s_t = s.gather(-1, t.unsqueeze(-1))
        rival = s.scatter(-1, t.unsqueeze(-1), float("-inf")).amax(-1, keepdim=True)
        return torch.clamp(opts["margin"] + rival - s_t, min=0).mean()

    def softmax_kl_div(x, t):  # the distillation recipe: log_softmax of both, kl_div with log_target
        T = opts["temperature"]
        return F.kl_div(F.log_softmax(x / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                        reduction="batchmean")

    def wasserstein(x, t):
        if opts["p"] not in (1, 2):
            raise Skip(f"p={opts['p']}")
        F_ = torch.cumsum(torch.softmax(x, dim=-1), dim=-1)
        valid = t != opts["ignore_index"]
        G = torch.cumsum(F.one_hot(t.clamp(min=0), x.shape[-1]).to(x.dtype), dim=-1)
        loss = (torch.abs(F_ - G) ** opts["p"]).sum(-1)
        return (loss * valid).sum() / valid.sum()

    return {
        "cross_entropy": lambda x, t: F.cross_entropy(
            x, t, ignore_index=opts["ignore_index"], label_smoothing=opts["label_smoothing"]
        ),
        "softmax_focal_loss": softmax_focal,
        "sigmoid_focal_loss": sigmoid_focal,
        "hinge_loss": hinge,
        "multiclass_hinge_loss": multiclass_hinge,
        "huber_loss": lambda x, y: F.huber_loss(x, y, delta=opts["delta"]),
        "smooth_l1_loss": lambda x, y: F.smooth_l1_loss(x, y, beta=opts["beta"]),
        "softmax_kl_div": softmax_kl_div,
        "wasserstein_loss": wasserstein,
    }


def torch_loss(case: Case) -> Callable:
    """PyTorch's loss for ``case`` as ``f(x, target) -> scalar`` (raises Skip when unmapped)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise Skip("torch is not installed") from None
    if case.opts.get("z_loss") or case.opts.get("softcap") or case.opts.get("weight") is not None:
        raise Skip("option not mapped to PyTorch")
    losses = _torch_losses(case.opts)
    if case.spec.name not in losses:
        raise Skip(f"no PyTorch mapping for {case.spec.name}")
    return losses[case.spec.name]


def to_torch(arr: np.ndarray, device: str = "cpu"):
    """A torch tensor sharing ``arr``'s memory on CPU (bfloat16 bits reinterpreted)."""
    import torch

    if isinstance(arr, torch.Tensor):
        return arr.to(device)

    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(arr.view(np.int16)).view(torch.bfloat16).to(device)
    return torch.from_numpy(arr).to(device)


def autograd_fn(loss: Callable, case: Case, device: str = "cpu") -> Callable[[], Any]:
    """The timed call of a torch ``loss``: forward under no_grad, or forward + backward."""
    import torch

    x, t = to_torch(case.x, device), to_torch(case.target, device)
    if case.form == "forward":

        def forward():
            with torch.no_grad():
                return loss(x, t)

        forward()  # fails here (-> Skip) rather than in the timing loop when the dtype is unsupported
        return forward
    xg = x.detach().requires_grad_(True)

    def forward_backward():
        value = loss(xg, t)
        (grad,) = torch.autograd.grad(value, xg)
        return value, grad

    forward_backward()
    return forward_backward


def torch_fn(case: Case, device: str = "cpu") -> Callable[[], Any]:
    try:
        return autograd_fn(torch_loss(case), case, device)
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        raise Skip(f"torch: {str(exc).splitlines()[0][:120]}") from None
