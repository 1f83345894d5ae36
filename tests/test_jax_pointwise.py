"""fastloss.jax versions of the seeds' other point-wise losses against optax / jax.numpy formulas
under jax.jit (float32, so agreement is to float32 round-off): values, grads (input and, for the
losses of input - target, the target), per-element weights as traced arrays, kl_div's batchmean."""

from __future__ import annotations

import fastloss.jax as fj
import jax
import jax.numpy as jnp
import optax
import pytest

TOL = {"rtol": 2e-5, "atol": 2e-6}


def _normal(seed, shape, scale=2.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, dtype=jnp.float32)


def _reduce(loss, reduction):
    return {"none": loss, "mean": jnp.mean(loss), "sum": jnp.sum(loss)}[reduction]


X, Y = _normal(0, (6, 7)), _normal(1, (6, 7))
P = jax.random.uniform(jax.random.key(2), (6, 7))
# name -> (fastloss.jax call, the same loss from optax / jnp, input, target)
CASES = {
    "mse_loss": (fj.mse_loss, optax.squared_error, X, Y),
    "l1_loss": (fj.l1_loss, lambda x, y: jnp.abs(x - y), X, Y),
    "log_cosh_loss": (fj.log_cosh_loss, optax.log_cosh, X, Y),
    "binary_cross_entropy_with_logits": (fj.binary_cross_entropy_with_logits, optax.sigmoid_binary_cross_entropy, X, P),
    "kl_div": (fj.kl_div, lambda x, t: jnp.where(t == 0, 0.0, t * jnp.log(jnp.where(t == 0, 1.0, t))) - t * x,
               jax.nn.log_softmax(X), jnp.where(P < 0.2, 0.0, P)),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_grads_match_under_jit(name, reduction):
    ours, theirs, x, t = CASES[name]
    f = jax.jit(lambda a, b: ours(a, b, reduction=reduction))
    g = jax.jit(lambda a, b: _reduce(theirs(a, b), reduction))
    assert jnp.allclose(f(x, t), g(x, t), **TOL)
    ct = _normal(3, (6, 7)) if reduction == "none" else 1.7
    difference = name in ("mse_loss", "l1_loss", "log_cosh_loss")
    argnums = (0, 1) if difference else (0,)
    ours_grads = jax.vjp(f, x, t)[1](jnp.asarray(ct, jnp.float32))
    theirs_grads = jax.vjp(g, x, t)[1](jnp.asarray(ct, jnp.float32))
    for i in argnums:
        assert jnp.allclose(ours_grads[i], theirs_grads[i], **TOL), f"grad of argument {i}"


@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_batchmean(log_target):
    x, t = jax.nn.log_softmax(X), jax.nn.softmax(Y)
    t = jnp.log(t) if log_target else t
    value, grad = jax.value_and_grad(lambda a: fj.kl_div(a, t, log_target=log_target, reduction="batchmean"))(x)
    expected = jnp.sum(jnp.exp(t) * (t - x) if log_target else t * (jnp.log(t) - x)) / x.shape[0]
    assert jnp.allclose(value, expected, **TOL)
    assert jnp.allclose(grad, -(jnp.exp(t) if log_target else t) / x.shape[0], **TOL)


def test_bce_weights_may_be_traced_arrays():
    w, pw = jax.random.uniform(jax.random.key(4), (6, 7)), jax.random.uniform(jax.random.key(5), (7,)) + 0.5

    def theirs(x, y, w, pw):  # PyTorch's formula: -w*(pw*y*log sigmoid(x) + (1-y)*log(1-sigmoid(x)))
        return jnp.mean(w * (pw * y * -jax.nn.log_sigmoid(x) + (1 - y) * -jax.nn.log_sigmoid(-x)))

    ours = jax.jit(lambda x, y, w, pw: fj.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw))
    assert jnp.allclose(ours(X, P, w, pw), theirs(X, P, w, pw), **TOL)
    assert jnp.allclose(jax.grad(ours)(X, P, w, pw), jax.grad(theirs)(X, P, w, pw), **TOL)


def test_batchmean_is_kl_div_only():
    with pytest.raises(ValueError, match=r"mse_loss: reduction must be one of \('none', 'mean', 'sum'\)"):
        fj.mse_loss(X, Y, reduction="batchmean")
