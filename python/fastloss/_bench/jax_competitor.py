"""JAX/optax as a competitor: optax's losses under ``jax.jit`` (the one place that maps a fastloss
loss to optax, keyed by loss name)."""

from __future__ import annotations

from typing import Any, Callable

from .cases import Case, Skip


def _optax_losses(opts: dict[str, Any]) -> dict[str, Callable]:
    import optax

    L = optax.losses

    def not_default(reason):
        def fail(*_):
            raise Skip(reason)

        return fail

    margin_one = opts.get("margin") == 1.0 and not opts.get("squared")
    return {
        "cross_entropy": (
            (lambda x, t: L.softmax_cross_entropy_with_integer_labels(x, t).mean())
            if not opts.get("label_smoothing") else not_default("label_smoothing not mapped")
        ),
        "sigmoid_focal_loss": lambda x, y: L.sigmoid_focal_loss(
            x, y, alpha=opts["alpha"] if opts.get("alpha", -1) >= 0 else None, gamma=opts["gamma"]
        ).mean(),
        "hinge_loss": (
            (lambda s, y: L.hinge_loss(s, y).mean()) if margin_one else not_default("optax: margin 1 only")
        ),
        "multiclass_hinge_loss": (
            (lambda s, t: L.multiclass_hinge_loss(s, t).mean())
            if margin_one and opts.get("variant") == "crammer_singer"
            else not_default("optax: crammer_singer, margin 1 only")
        ),
        "huber_loss": lambda x, y: L.huber_loss(x, y, delta=opts["delta"]).mean(),
        # smooth_l1(beta) == huber(delta=beta) / beta, exactly
        "smooth_l1_loss": lambda x, y: L.huber_loss(x, y, delta=opts["beta"]).mean() / opts["beta"],
        "mse_loss": lambda x, y: L.squared_error(x, y).mean(),
        "l1_loss": lambda x, y: L.absolute_error(x, y).mean() if hasattr(L, "absolute_error") else abs(x - y).mean(),
        "log_cosh_loss": lambda x, y: L.log_cosh(x, y).mean(),
        "binary_cross_entropy_with_logits": (
            (lambda x, y: L.sigmoid_binary_cross_entropy(x, y).mean()) if opts.get("weight") is None and opts.get("pos_weight") is None
            else not_default("weight/pos_weight not mapped")
        ),
        # optax.kl_divergence sums over the last axis; fastloss's default "mean" is over elements
        "kl_div": (
            (lambda x, t: L.kl_divergence(x, t).sum() / x.size) if not opts.get("log_target")
            else (lambda x, t: L.kl_divergence_with_log_targets(x, t).sum() / x.size)
        ),
    }


def jax_fn(case: Case) -> Callable[[], Any]:
    """``jax.jit`` of optax's loss: forward, ``grad`` (backward) or ``value_and_grad`` (fused)."""
    try:
        import jax
        import jax.numpy as jnp
        import optax  # noqa: F401
    except ImportError:
        raise Skip("jax/optax is not installed") from None
    if case.opts.get("z_loss") or case.opts.get("softcap") or case.opts.get("weight") is not None:
        raise Skip("option not mapped to optax")
    if case.dtype == "float64" and not jax.config.jax_enable_x64:
        raise Skip("float64 needs JAX_ENABLE_X64=1 (JAX would silently compute in float32)")
    losses = _optax_losses(case.opts)
    if case.spec.name not in losses:
        raise Skip(f"optax has no {case.spec.name}")
    loss = losses[case.spec.name]
    wrap = {"forward": lambda f: f, "backward": jax.grad, "fused": jax.value_and_grad}[case.form]
    compiled = jax.jit(wrap(loss))
    x, t = jnp.asarray(case.x), jnp.asarray(case.target)

    def call():
        return jax.block_until_ready(compiled(x, t))

    try:
        call()
    except Skip:
        raise
    except Exception as exc:  # noqa: BLE001 - any XLA failure means "cannot compare here"
        raise Skip(f"jax: {str(exc).splitlines()[0][:120]}") from None
    return call
