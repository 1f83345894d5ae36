"""Every bad input of DESIGN.md 1.3 raises the named exception, naming the argument and the value."""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
from problems import NAMES, SPECS, call

X = np.zeros((4, 5))
CLASS_T = np.array([0, 1, 4, 2])
FLOAT_T = np.zeros((4, 5))
BINARY_T = np.ones((4, 5))


def target_for(name):
    if SPECS[name].logit_targets:
        return FLOAT_T
    if SPECS[name].rowwise:
        return CLASS_T
    return BINARY_T if name in ("sigmoid_focal_loss", "hinge_loss", "binary_cross_entropy_with_logits") else FLOAT_T


# (loss, call's input changes, exception, message regex)
BAD = [
    # class indices out of range and not ignore_index
    *[(n, {"target": np.array([0, 5, 1, 2])}, ValueError, (r"target\[1\] = 5 is out of range \[0, 5\) and is "
       r"not ignore_index=-100")) for n in ("cross_entropy", "softmax_focal_loss", "multiclass_hinge_loss")],
    ("cross_entropy", {"target": np.array([0, 1, -1, 2])}, ValueError, r"target\[2\] = -1 is out of range"),
    ("cross_entropy", {"target": np.array([0, 1, -100, 2]), "ignore_index": 3}, ValueError,
     r"target\[2\] = -100 is out of range \[0, 5\) and is not ignore_index=3"),
    ("cross_entropy", {"target": np.array([0, 1, 2**63 + 5, 2], dtype=np.uint64)}, ValueError,
     r"target\[2\] = 9223372036854775813 is out of range \[0, 5\)"),
    ("cross_entropy", {"target": np.array([0, 1, 200, 2], dtype=np.uint8)}, ValueError, r"target\[2\] = 200"),
    # shapes
    ("cross_entropy", {"target": np.array([0, 1, 2])}, ValueError,
     r"target must have shape \(4,\) \(logits's shape \(4, 5\) without axis 1\), got \(3,\)"),
    ("cross_entropy", {"target": np.zeros((4, 4))}, ValueError,
     r"soft target must have logits's shape \(4, 5\), got \(4, 4\)"),
    ("huber_loss", {"target": np.zeros((4, 4))}, ValueError, r"target must have input's shape \(4, 5\), got \(4, 4\)"),
    ("huber_loss", {"target": np.zeros(5)}, ValueError, r"target must have input's shape \(4, 5\), got \(5,\)"),
    ("cross_entropy", {"logits": np.zeros(())}, ValueError, "logits must have a class axis, got a 0-d array"),
    ("cross_entropy", {"logits": np.zeros((4, 0)), "target": np.zeros(4, dtype=int)}, ValueError,
     r"logits has 0 classes along axis -1 \(shape \(4, 0\)\)"),
    ("cross_entropy", {"axis": 2}, ValueError, r"axis 2 is out of range for logits of shape \(4, 5\)"),
    ("cross_entropy", {"axis": -3}, ValueError, r"axis -3 is out of range"),
    ("cross_entropy", {"axis": 1.0}, TypeError, "axis must be an integer, got 1.0"),
    # non-float input, wrong target kind
    *[(n, {SPECS[n].input_name: np.zeros((4, 5), dtype=np.int32)}, TypeError,
       f"{SPECS[n].input_name} must be a floating-point array .* got dtype int32") for n in NAMES],
    ("huber_loss", {"input": np.zeros((4, 5), dtype=bool)}, TypeError, "input must be a floating-point .* bool"),
    ("cross_entropy", {"logits": np.zeros((4, 5), dtype=np.complex128)}, TypeError, "got dtype complex128"),
    ("softmax_focal_loss", {"target": FLOAT_T}, TypeError, "target must hold integer class indices, got dtype float64"),
    ("multiclass_hinge_loss", {"target": FLOAT_T}, TypeError, "target must hold integer class indices"),
    ("cross_entropy", {"target": np.zeros(4, dtype=bool)}, TypeError,
     "target must hold integer class indices or float probabilities, got dtype bool"),
    ("huber_loss", {"target": np.zeros((4, 5), dtype=np.int64)}, TypeError,
     "target must be a floating-point array for huber_loss, got dtype int64"),
    ("smooth_l1_loss", {"target": np.zeros((4, 5), dtype=bool)}, TypeError, "target must be a floating-point"),
    ("huber_loss", {"target": np.zeros((4, 5), dtype=np.complex64)}, TypeError, "got dtype complex64"),
    ("sigmoid_focal_loss", {"target": np.full((4, 5), 2)}, ValueError, r"target\[0, 0\] = 2 is not in \{0, 1\}"),
    ("sigmoid_focal_loss", {"target": np.full((4, 5), 1.5)}, ValueError, r"target\[0, 0\] = 1.5 is not in \[0.0, 1.0\]"),
    ("sigmoid_focal_loss", {"target": np.full((4, 5), -0.25, dtype=np.float32)}, ValueError, r"-0.25 is not in"),
    ("hinge_loss", {"target": np.full((4, 5), 0.5)}, ValueError, r"target\[0, 0\] = 0.5 is not in \{0, 1, -1\}"),
    ("hinge_loss", {"target": np.full((4, 5), 2, dtype=np.uint8)}, ValueError, r"target\[0, 0\] = 2 is not in"),
    ("hinge_loss", {"target": np.full((4, 5), -3, dtype=np.int8)}, ValueError, r"= -3 is not in"),
    # unknown reduction / variant
    *[(n, {"reduction": "avg"}, ValueError, r"reduction must be one of \('none', 'mean', 'sum'.*\), got 'avg'")
      for n in NAMES],
    ("multiclass_hinge_loss", {"variant": "ovr"}, ValueError,
     r"variant must be one of \('crammer_singer', 'weston_watkins'\), got 'ovr'"),
    # bad option values
    ("cross_entropy", {"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\], got 1.5"),
    ("cross_entropy", {"label_smoothing": -0.1}, ValueError, r"label_smoothing must be in \[0, 1\], got -0.1"),
    ("cross_entropy", {"z_loss": -1.0}, ValueError, "z_loss must be >= 0, got -1.0"),
    ("cross_entropy", {"softcap": 0.0}, ValueError, "softcap must be > 0, got 0.0"),
    ("cross_entropy", {"softcap": -2}, ValueError, "softcap must be > 0, got -2.0"),
    ("cross_entropy", {"softcap": float("inf")}, ValueError, "softcap must be finite, got inf"),
    ("cross_entropy", {"weight": np.ones(4)}, ValueError, r"weight must have shape \(5,\) .*got \(4,\)"),
    ("cross_entropy", {"weight": np.ones((5, 1))}, ValueError, r"weight must have shape \(5,\)"),
    ("cross_entropy", {"weight": np.array([1, 1, np.nan, 1, 1])}, ValueError, "weight must be finite"),
    ("cross_entropy", {"weight": np.array(["a"] * 5)}, TypeError, "weight must hold real numbers"),
    ("cross_entropy", {"ignore_index": 1.5}, TypeError, "ignore_index must be an integer, got 1.5"),
    ("cross_entropy", {"ignore_index": True}, TypeError, "ignore_index must be an integer, got True"),
    ("softmax_focal_loss", {"gamma": -1.0}, ValueError, "gamma must be >= 0, got -1.0"),
    ("softmax_focal_loss", {"gamma": float("nan")}, ValueError, "gamma must be finite, got nan"),
    ("softmax_focal_loss", {"alpha": np.ones(3)}, ValueError, r"alpha must have shape \(5,\)"),
    ("softmax_focal_loss", {"alpha": "0.25"}, TypeError, "alpha"),
    ("sigmoid_focal_loss", {"gamma": -0.5}, ValueError, "gamma must be >= 0, got -0.5"),
    ("sigmoid_focal_loss", {"alpha": None}, TypeError, "alpha must be a real number, got None"),
    ("hinge_loss", {"margin": float("nan")}, ValueError, "margin must be finite, got nan"),
    ("hinge_loss", {"squared": "yes"}, TypeError, "squared must be a bool, got 'yes'"),
    ("multiclass_hinge_loss", {"squared": 1}, TypeError, "squared must be a bool, got 1"),
    ("multiclass_hinge_loss", {"weight": np.ones(6)}, ValueError, r"weight must have shape \(5,\)"),
    ("huber_loss", {"delta": 0.0}, ValueError, "delta must be > 0, got 0.0"),
    ("huber_loss", {"delta": "1"}, TypeError, "delta must be a real number, got '1'"),
    ("smooth_l1_loss", {"beta": -1.0}, ValueError, "beta must be >= 0, got -1.0"),
    # soft targets with a non-default ignore_index
    ("cross_entropy", {"target": FLOAT_T, "ignore_index": 3}, ValueError,
     "ignore_index=3 cannot be used with soft"),
    # not arrays at all
    ("cross_entropy", {"logits": object()}, TypeError, "logits is not a numeric array: object"),
    ("huber_loss", {"target": "abc"}, TypeError, "target"),
    # the seeds' other losses (DESIGN 1.1b): target domains, per-element options, reductions
    ("binary_cross_entropy_with_logits", {"target": np.full((4, 5), 1.5)}, ValueError,
     r"target\[0, 0\] = 1.5 is not in \[0.0, 1.0\]"),
    ("binary_cross_entropy_with_logits", {"target": np.full((4, 5), -0.5, dtype=np.float32)}, ValueError,
     r"target\[0, 0\] = -0.5 is not in \[0.0, 1.0\]"),
    ("binary_cross_entropy_with_logits", {"target": np.full((4, 5), 2, dtype=np.int64)}, ValueError,
     r"target\[0, 0\] = 2 is not in \{0, 1\}"),
    ("binary_cross_entropy_with_logits", {"weight": np.ones(4)}, ValueError,
     r"weight must have logits's shape \(4, 5\) or \(5,\) along its last axis, got \(4,\)"),
    ("binary_cross_entropy_with_logits", {"weight": np.ones((5, 4))}, ValueError,
     r"weight must have logits's shape \(4, 5\) .*got \(5, 4\)"),
    ("binary_cross_entropy_with_logits", {"pos_weight": np.ones((4, 1))}, ValueError,
     r"pos_weight must have logits's shape \(4, 5\) .*got \(4, 1\)"),
    ("binary_cross_entropy_with_logits", {"pos_weight": float("inf")}, ValueError, "pos_weight must be finite, got inf"),
    ("binary_cross_entropy_with_logits", {"weight": np.array(["a"] * 5)}, TypeError, "weight must hold real numbers"),
    ("kl_div", {"target": np.full((4, 5), -0.25)}, ValueError, r"target\[0, 0\] = -0.25 is not in \[0.0, inf\]"),
    ("kl_div", {"target": np.zeros((4, 5), dtype=np.int64)}, TypeError,
     "target must be a floating-point array for kl_div"),
    ("kl_div", {"log_target": 1}, TypeError, "log_target must be a bool, got 1"),
    ("kl_div", {"target": np.zeros((5, 4))}, ValueError, r"target must have input's shape \(4, 5\), got \(5, 4\)"),
    ("mse_loss", {"reduction": "batchmean"}, ValueError,
     r"reduction must be one of \('none', 'mean', 'sum'\), got 'batchmean'"),
    ("log_cosh_loss", {"target": np.zeros(5)}, ValueError, r"target must have input's shape \(4, 5\), got \(5,\)"),
]


# softmax_kl_div and wasserstein_loss (DESIGN 1.1b)
BAD += [
    ("softmax_kl_div", {"target": CLASS_T}, TypeError,
     r"target must hold float logits of logits's shape, got dtype int64"),
    ("softmax_kl_div", {"target": np.zeros((4, 4))}, ValueError, r"target must have logits's shape \(4, 5\), got \(4, 4\)"),
    ("softmax_kl_div", {"target": np.zeros((5, 4))}, ValueError, r"target must have logits's shape \(4, 5\), got \(5, 4\)"),
    ("softmax_kl_div", {"temperature": 0.0}, ValueError, "temperature must be > 0, got 0.0"),
    ("softmax_kl_div", {"temperature": -2}, ValueError, "temperature must be > 0, got -2.0"),
    ("softmax_kl_div", {"temperature": float("nan")}, ValueError, "temperature must be finite, got nan"),
    ("softmax_kl_div", {"temperature": "2"}, TypeError, "temperature must be a real number, got '2'"),
    ("wasserstein_loss", {"p": 3}, ValueError, "p must be 1 or 2, got 3"),
    ("wasserstein_loss", {"p": 0}, ValueError, "p must be 1 or 2, got 0"),
    ("wasserstein_loss", {"p": 1.5}, TypeError, "p must be an integer, got 1.5"),
    ("wasserstein_loss", {"target": np.array([0, 5, 1, 2])}, ValueError,
     r"target\[1\] = 5 is out of range \[0, 5\) and is not ignore_index=-100"),
    ("wasserstein_loss", {"target": np.array([0, 1, 2])}, ValueError, r"target must have shape \(4,\)"),
    ("wasserstein_loss", {"target": np.zeros((4, 4))}, ValueError,
     r"soft target must have logits's shape \(4, 5\), got \(4, 4\)"),
    ("wasserstein_loss", {"target": np.zeros(4, dtype=bool)}, TypeError,
     "target must hold integer class indices or float probabilities, got dtype bool"),
    ("wasserstein_loss", {"target": FLOAT_T, "ignore_index": 2}, ValueError, "ignore_index=2 cannot be used with soft"),
]


def bad_id(entry):
    name, changes, exc, _ = entry
    return f"{name}-{exc.__name__}-" + ",".join(f"{k}={getattr(v, 'dtype', v)}" for k, v in changes.items())


@pytest.mark.parametrize("form", ["loss", "grad", "with_grad"])
@pytest.mark.parametrize(("name", "changes", "exc", "message"), BAD, ids=[bad_id(b) for b in BAD])
def test_bad_input_raises_named_exception(backend, name, changes, exc, message, form):
    args = {SPECS[name].input_name: X, "target": target_for(name), **changes}
    x, t = args.pop(SPECS[name].input_name), args.pop("target")
    function = name if form == "loss" else f"{name}_{form}"
    with pytest.raises(exc, match=f"^{function}: .*{message}"):
        call(name, form, x, t, **args)


def test_unknown_keyword_is_a_type_error(backend):
    with pytest.raises(TypeError, match="delta"):
        fastloss.smooth_l1_loss(FLOAT_T, FLOAT_T, delta=1.0)
    with pytest.raises(TypeError, match="axis"):
        fastloss.huber_loss(FLOAT_T, FLOAT_T, axis=0)


class FakeDeviceArray:
    """An array that says (through DLPack) it lives on a CUDA device."""

    def __dlpack__(self, **kwargs):
        raise AssertionError("fastloss must not read device memory from the host")

    def __dlpack_device__(self):
        return 2, 0


def test_mixed_devices_are_rejected(backend):
    with pytest.raises(ValueError, match=r"logits and target are on different devices: .*'cpu'.*'cuda:0'"):
        fastloss.cross_entropy(X, FakeDeviceArray())
    with pytest.raises(ValueError, match=r"different devices: \{'input': 'cuda:0', 'target': 'cpu'\}"):
        fastloss.huber_loss_grad(FakeDeviceArray(), FLOAT_T)


# A kernel that checks float targets inside its one pass must not have overwritten an in-place
# input by the time it finds a bad value (here the very last one): a rejected call changes nothing.
@pytest.mark.parametrize("name", ["sigmoid_focal_loss", "hinge_loss", "binary_cross_entropy_with_logits", "kl_div"])
def test_rejected_in_place_call_leaves_the_input_intact(backend, rng, name):
    x = rng.standard_normal((64, 33)).astype(np.float32)
    t = np.ones_like(x)
    t[-1, -1] = -3.0 if name == "kl_div" else 3.0
    before = x.copy()
    with pytest.raises(ValueError, match=rf"target\[63, 32\] = {t[-1, -1]} is not in"):
        call(name, "grad", x, t, out=x)
    np.testing.assert_array_equal(x, before)


def test_kl_div_log_target_lifts_the_domain(backend):
    log_q = np.log(np.full((4, 5), 0.2))  # negative log-probabilities are valid with log_target=True
    assert np.isfinite(fastloss.kl_div(log_q, log_q, log_target=True))
    with pytest.raises(ValueError, match=r"kl_div: target\[0, 0\] = -1.6\d* is not in \[0.0, inf\]"):
        fastloss.kl_div(log_q, log_q)
