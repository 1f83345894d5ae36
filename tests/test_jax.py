"""fastloss.jax against optax's losses under jax.jit: values, jax.grad, vmap, reductions, options.

optax works in float32 (JAX's default), so agreement is to float32 round-off.
"""

from __future__ import annotations

import fastloss
import fastloss.jax as fj
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

TOL = {"rtol": 2e-5, "atol": 2e-6}


def _normal(seed, shape, scale=2.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, dtype=jnp.float32)


def _labels(seed, shape, C):
    return jax.random.randint(jax.random.key(seed), shape, 0, C)


def _binary(seed, shape):
    return (jax.random.uniform(jax.random.key(seed), shape) > 0.5).astype(jnp.float32)


def _pm_one(seed, shape):
    return 2.0 * _binary(seed, shape) - 1.0


# name -> (fastloss.jax call, optax's per-element loss, input, target): the optax counterparts the
# issue names, plus Crammer-Singer (optax.multiclass_hinge_loss) and optax's label smoothing.
CASES = {
    "cross_entropy": (
        lambda x, t, r: fj.cross_entropy(x, t, reduction=r),
        optax.softmax_cross_entropy_with_integer_labels,
        _normal(0, (16, 10)),
        _labels(1, (16,), 10),
    ),
    "cross_entropy-axis1": (
        lambda x, t, r: fj.cross_entropy(x, t, axis=1, reduction=r),
        lambda x, t: optax.softmax_cross_entropy_with_integer_labels(x, t, axis=1),
        _normal(2, (4, 6, 3)),
        _labels(3, (4, 3), 6),
    ),
    "cross_entropy-smoothing": (
        lambda x, t, r: fj.cross_entropy(x, t, label_smoothing=0.1, reduction=r),
        lambda x, t: optax.softmax_cross_entropy(x, optax.smooth_labels(jax.nn.one_hot(t, 10), 0.1)),
        _normal(4, (16, 10)),
        _labels(5, (16,), 10),
    ),
    "cross_entropy-soft": (
        lambda x, t, r: fj.cross_entropy(x, t, reduction=r),
        optax.softmax_cross_entropy,
        _normal(6, (8, 5)),
        jax.nn.softmax(_normal(7, (8, 5))),
    ),
    "huber_loss": (
        lambda x, y, r: fj.huber_loss(x, y, delta=0.7, reduction=r),
        lambda x, y: optax.huber_loss(x, y, delta=0.7),
        _normal(8, (6, 7)),
        _normal(9, (6, 7)),
    ),
    "sigmoid_focal_loss": (
        lambda x, y, r: fj.sigmoid_focal_loss(x, y, alpha=0.3, gamma=1.5, reduction=r),
        lambda x, y: optax.sigmoid_focal_loss(x, y, alpha=0.3, gamma=1.5),
        _normal(10, (6, 7)),
        _binary(11, (6, 7)),
    ),
    "sigmoid_focal_loss-no-alpha": (
        lambda x, y, r: fj.sigmoid_focal_loss(x, y, alpha=-1.0, gamma=2.0, reduction=r),
        lambda x, y: optax.sigmoid_focal_loss(x, y, alpha=None, gamma=2.0),
        _normal(12, (40,)),
        _binary(13, (40,)),
    ),
    "hinge_loss": (
        lambda s, y, r: fj.hinge_loss(s, y, reduction=r),
        optax.hinge_loss,
        _normal(14, (50,)),
        _pm_one(15, (50,)),
    ),
    "multiclass_hinge_loss": (
        lambda s, t, r: fj.multiclass_hinge_loss(s, t, reduction=r),
        optax.losses.multiclass_hinge_loss,
        _normal(16, (20, 6)),
        _labels(17, (20,), 6),
    ),
}


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_grad_match_optax_under_jit(name, reduction):
    ours, per_element, x, target = CASES[name]
    reduce = {"none": lambda v: v, "mean": jnp.mean, "sum": jnp.sum}[reduction]

    def theirs(x, t):
        return reduce(per_element(x, t))

    def fastloss_jax(x, t):
        return ours(x, t, reduction)

    cotangent = jax.random.uniform(jax.random.key(99), jax.eval_shape(theirs, x, target).shape)

    def weighted(fn):  # a scalar whose gradient is the VJP with a random cotangent
        return jax.jit(jax.value_and_grad(lambda x, t: jnp.sum(fn(x, t) * cotangent)))

    value, grad = weighted(fastloss_jax)(x, target)
    ref_value, ref_grad = weighted(theirs)(x, target)
    np.testing.assert_allclose(value, ref_value, **TOL)
    np.testing.assert_allclose(grad, ref_grad, **TOL)
    np.testing.assert_allclose(jax.jit(fastloss_jax)(x, target), theirs(x, target), **TOL)


def test_traced_class_weights_match_pytorchs_weighted_mean():
    x, t, w = _normal(0, (12, 5)), _labels(1, (12,), 5), jnp.linspace(0.5, 2.0, 5)
    loss, grad = jax.jit(jax.value_and_grad(lambda x, w: fj.cross_entropy(x, t, weight=w)))(x, w)

    def weighted_mean(x):  # sum_i w_t * ce_i / sum_i w_t
        return jnp.sum(w[t] * optax.softmax_cross_entropy_with_integer_labels(x, t)) / jnp.sum(w[t])

    ref_loss, ref_grad = jax.value_and_grad(weighted_mean)(x)
    np.testing.assert_allclose(loss, ref_loss, **TOL)
    np.testing.assert_allclose(grad, ref_grad, **TOL)


def test_vmap_of_jit_grad_matches_per_example_grads():
    xs, ts = _normal(0, (3, 8, 5)), _labels(1, (3, 8), 5)
    ours = jax.jit(jax.vmap(jax.grad(lambda x, t: fj.cross_entropy(x, t, label_smoothing=0.1))))(xs, ts)

    def reference(x, t):
        return optax.softmax_cross_entropy(x, optax.smooth_labels(jax.nn.one_hot(t, 5), 0.1)).mean()

    np.testing.assert_allclose(ours, jax.jit(jax.vmap(jax.grad(reference)))(xs, ts), **TOL)


def test_vmap_of_unreduced_loss_with_positive_axis():
    xs, ts = _normal(0, (3, 4, 6, 2)), _labels(1, (3, 4, 2), 6)
    ours = jax.jit(jax.vmap(lambda x, t: fj.cross_entropy(x, t, axis=1, reduction="none")))(xs, ts)
    np.testing.assert_allclose(ours, optax.softmax_cross_entropy_with_integer_labels(xs, ts, axis=2), **TOL)


def test_bfloat16_gradient_keeps_the_input_dtype_and_float32_loss():
    x, t = _normal(0, (8, 5)).astype(jnp.bfloat16), _labels(1, (8,), 5)
    loss, grad = jax.jit(jax.value_and_grad(fj.cross_entropy))(x, t)
    assert loss.dtype == jnp.float32 and grad.dtype == jnp.bfloat16
    ref = jax.grad(
        lambda x: optax.softmax_cross_entropy_with_integer_labels(x.astype(jnp.float32), t).mean()
    )(x)
    np.testing.assert_allclose(np.asarray(grad, np.float32), ref, rtol=1e-2, atol=1e-3)


def test_signatures_follow_the_core_api():
    import inspect

    for name in fj.__all__:
        assert inspect.signature(getattr(fj, name)) == inspect.signature(getattr(fastloss, name))


def test_bad_options_are_rejected_at_trace_time_and_bad_data_at_run_time():
    x, t = _normal(0, (4, 3)), jnp.array([0, 1, 2, 5])
    with pytest.raises(ValueError, match="reduction"):
        jax.jit(lambda x: fj.cross_entropy(x, t, reduction="avg"))(x)
    with pytest.raises(ValueError, match="label_smoothing"):
        fj.cross_entropy(x, t, label_smoothing=2.0)
    with pytest.raises(ValueError, match="axis"):
        fj.cross_entropy(x, t, axis=2)
    with pytest.raises(Exception, match=r"target\[3\] = 5 is out of range"):
        jax.jit(fj.cross_entropy)(x, t).block_until_ready()
