"""The boosting objectives' Hessian choices and starting scores, against independent references.

- ``hessian="booster"`` for cross-entropy / Huber reproduces the booster's own built-in objective
  (same trees, same margins) when both start from the same score: the reference is XGBoost's and
  LightGBM's C++ objective itself.
- ``hessian="auto"`` curvatures are checked against their formulas in NumPy.
- ``base_score`` against NumPy / SciPy minimisers of the loss written here from its formula.
"""

from __future__ import annotations

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
optimize = pytest.importorskip("scipy.optimize")

from fastloss import lightgbm as flgb
from fastloss import xgboost as fxgb

N, CLASSES, ROUNDS = 300, 4, 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, 5))
    logits = X[:, :CLASSES] * 2 + rng.standard_normal((N, CLASSES))
    return {"X": X, "multi": np.argmax(logits, axis=1), "binary": (X[:, 0] + rng.standard_normal(N) > 0.3) * 1,
            "regression": 20 * X[:, 0] + 5 * rng.standard_t(2, N) + 50, "weight": rng.uniform(0.5, 2.0, N)}


# ---- hessian="booster" is the booster's built-in objective -----------------------------------------


def test_xgboost_softprob_convention(data):
    X, y, w = data["X"], data["multi"], data["weight"]
    start = fxgb.objective("cross_entropy").base_score(y, w)
    params = {"num_class": CLASSES, "max_depth": 3, "nthread": 1, "base_score": start}
    ours = xgb.train(params, xgb.DMatrix(X, y, weight=w), ROUNDS, obj=fxgb.objective("cross_entropy", hessian="booster"))
    theirs = xgb.train(dict(params, objective="multi:softprob"), xgb.DMatrix(X, y, weight=w), ROUNDS)
    dm = xgb.DMatrix(X)
    np.testing.assert_allclose(ours.predict(dm, output_margin=True), theirs.predict(dm, output_margin=True),
                               rtol=1e-5, atol=1e-5)
    exact = xgb.train(params, xgb.DMatrix(X, y, weight=w), ROUNDS, obj=fxgb.objective("cross_entropy", hessian="exact"))
    assert np.abs(exact.predict(dm, output_margin=True) - theirs.predict(dm, output_margin=True)).max() > 1e-2


def test_lightgbm_multiclass_convention(data):
    X, y, w = data["X"], data["multi"], data["weight"]
    params = {"num_class": CLASSES, "num_leaves": 7, "verbose": -1, "num_threads": 1, "deterministic": True,
              "force_row_wise": True, "boost_from_average": False}
    ours = lgb.train(dict(params, objective=flgb.objective("cross_entropy", hessian="booster")),
                     lgb.Dataset(X, y, weight=w), ROUNDS)
    theirs = lgb.train(dict(params, objective="multiclass"), lgb.Dataset(X, y, weight=w), ROUNDS)
    np.testing.assert_allclose(ours.predict(X, raw_score=True), theirs.predict(X, raw_score=True), rtol=1e-6, atol=1e-6)


def test_lightgbm_huber_convention(data):
    X, y = data["X"], data["regression"]
    params = {"num_leaves": 7, "verbose": -1, "num_threads": 1, "deterministic": True, "force_row_wise": True,
              "boost_from_average": False}
    ours = lgb.train(dict(params, objective=flgb.objective("huber_loss", delta=3.0, hessian="booster")),
                     lgb.Dataset(X, y), ROUNDS)
    theirs = lgb.train(dict(params, objective="huber", alpha=3.0), lgb.Dataset(X, y), ROUNDS)
    np.testing.assert_allclose(ours.predict(X, raw_score=True), theirs.predict(X, raw_score=True), rtol=1e-6, atol=1e-6)


def test_mse_is_the_booster_squared_error(data):
    """mse_loss is handed over as 1/2 e**2 (g = e, h = 1), so XGBoost's reg_lambda acts as in reg:squarederror."""
    X, y = data["X"], data["regression"]
    params = {"max_depth": 3, "nthread": 1, "base_score": float(np.mean(y))}
    ours = xgb.train(params, xgb.DMatrix(X, y), ROUNDS, obj=fxgb.objective("mse_loss"))
    theirs = xgb.train(dict(params, objective="reg:squarederror"), xgb.DMatrix(X, y), ROUNDS)
    dm = xgb.DMatrix(X)
    np.testing.assert_allclose(ours.predict(dm), theirs.predict(dm), rtol=1e-5)
    g, h = fxgb.objective("mse_loss", hessian="exact", reuse_outputs=False)(y, np.zeros_like(y))
    np.testing.assert_allclose(g, -2 * y)
    np.testing.assert_array_equal(h, 2.0)


def test_binary_softmax_is_the_booster_logistic(data):
    """A row-wise loss on one margin per sample: cross-entropy on (0, m) is binary:logistic."""
    X, y = data["X"], data["binary"]
    params = {"max_depth": 3, "nthread": 1}
    # both start at margin 0: a custom objective's base_score is a margin, binary:logistic's a probability
    ours = xgb.train(dict(params, base_score=0.0), xgb.DMatrix(X, y), ROUNDS, obj=fxgb.objective("cross_entropy"))
    theirs = xgb.train(dict(params, objective="binary:logistic", base_score=0.5), xgb.DMatrix(X, y), ROUNDS)
    dm = xgb.DMatrix(X)
    np.testing.assert_allclose(ours.predict(dm, output_margin=True), theirs.predict(dm, output_margin=True),
                               rtol=1e-5, atol=1e-5)


# ---- hessian="auto" curvatures, from their formulas ------------------------------------------------


def _hess(loss, margins, labels, weight=None, **opts):
    obj = flgb.objective(loss, reuse_outputs=False, **opts)
    return obj(labels, margins, weight)[1]  # the scikit-learn API's (y_true, y_pred, weight)


def test_auto_curvatures():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(200) * 5
    x = y + rng.standard_normal(200) * 3
    x[:3] = y[:3]  # residual exactly 0
    e = x - y
    w = rng.uniform(0.5, 2.0, 200)
    floor = 0.01 * np.mean(np.abs(e))
    np.testing.assert_allclose(_hess("huber_loss", x, y, delta=2.0), np.minimum(1.0, 2.0 / np.maximum(np.abs(e), floor)))
    np.testing.assert_allclose(_hess("smooth_l1_loss", x, y, w, beta=0.5),
                               w * np.minimum(2.0, 1.0 / np.maximum(np.abs(e), floor)))
    np.testing.assert_allclose(_hess("l1_loss", x, y), 1.0 / np.maximum(np.abs(e), np.mean(np.abs(e))))
    r = np.where(e == 0, 1.0, e)
    np.testing.assert_allclose(_hess("log_cosh_loss", x, y), np.where(e == 0, 1.0, np.tanh(r) / r), rtol=1e-12)
    labels = (rng.uniform(size=200) > 0.5) * 1.0
    u = np.abs(1.0 - np.where(labels == 1, 1.0, -1.0) * x)
    np.testing.assert_allclose(_hess("hinge_loss", x, labels), 0.5 / np.maximum(u, 0.01 * u.mean()))
    # exact: the true diagonal, zero on the linear pieces
    exact = flgb.objective("huber_loss", delta=2.0, hessian="exact", reuse_outputs=False)(y, x)[1]
    np.testing.assert_array_equal(exact, (np.abs(e) < 2.0) * 1.0)


def test_softmax_floor_and_focal_clip():
    z = np.random.default_rng(2).standard_normal((50, 3)) * 6
    t = np.arange(50) % 3
    exact = fxgb.objective("softmax_focal_loss", hessian="exact", reuse_outputs=False)(t, z)[1]
    auto = fxgb.objective("softmax_focal_loss", reuse_outputs=False)(t, z)[1]
    assert (exact < 0).any()  # the focal diagonal is not positive everywhere ...
    np.testing.assert_allclose(auto, np.maximum(2.0 * np.maximum(exact, 0.0), 1e-16))  # ... the booster's form is
    lgb_auto = flgb.objective("softmax_focal_loss", reuse_outputs=False)(t, np.asfortranarray(z))[1]
    np.testing.assert_allclose(lgb_auto, 1.5 * np.maximum(exact, 0.0))


# ---- starting scores -------------------------------------------------------------------------------


def _constant_minimiser(f, lo, hi):
    return optimize.minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10}).x


def test_pointwise_base_scores(data):
    y, w = data["regression"], data["weight"]
    obj = lambda loss, **o: fxgb.objective(loss, **o)
    np.testing.assert_allclose(obj("mse_loss").base_score(y, w), np.average(y, weights=w), rtol=1e-12)
    c = obj("l1_loss").base_score(y, w)
    wabs = lambda v: np.sum(w * np.abs(v - y))
    assert wabs(c) <= wabs(_constant_minimiser(wabs, y.min(), y.max())) * (1 + 1e-12)

    def huber(c, d=4.0):
        e = np.abs(c - y)
        return np.sum(np.where(e < d, 0.5 * e * e, d * (e - 0.5 * d)))
    np.testing.assert_allclose(obj("huber_loss", delta=4.0).base_score(y), _constant_minimiser(huber, y.min(), y.max()),
                               rtol=1e-6)
    np.testing.assert_allclose(obj("smooth_l1_loss", beta=4.0).base_score(y), obj("huber_loss", delta=4.0).base_score(y),
                               rtol=1e-12)
    logcosh = lambda c: np.sum(np.logaddexp(c - y, y - c))
    np.testing.assert_allclose(obj("log_cosh_loss").base_score(y), _constant_minimiser(logcosh, y.min(), y.max()),
                               rtol=1e-6)
    b = data["binary"]
    np.testing.assert_allclose(obj("binary_cross_entropy_with_logits").base_score(b),
                               np.log(b.mean() / (1 - b.mean())), rtol=1e-10)
    np.testing.assert_allclose(obj("binary_cross_entropy_with_logits", pos_weight=3.0).base_score(b),
                               np.log(3 * b.mean() / (1 - b.mean())), rtol=1e-10)


def test_rowwise_base_scores(data):
    y, w = data["multi"], data["weight"]
    prior = np.bincount(y, weights=w) / w.sum()
    b = np.array(fxgb.objective("cross_entropy").base_score(y, w))
    np.testing.assert_allclose(b - b.mean(), np.log(prior) - np.log(prior).mean(), rtol=1e-12)
    smooth = np.array(fxgb.objective("cross_entropy", label_smoothing=0.2).base_score(y, w))
    q = 0.8 * prior + 0.2 / CLASSES  # the smoothed targets' mean is the optimal softmax
    np.testing.assert_allclose(np.exp(smooth) / np.exp(smooth).sum(), q, rtol=1e-4)

    def focal(c, gamma=2.0):
        p = np.exp(c - np.logaddexp.reduce(c))
        return np.sum(np.bincount(y, weights=w, minlength=CLASSES) * -(1 - p) ** gamma * np.log(p))
    ours = np.array(fxgb.objective("softmax_focal_loss").base_score(y, w))
    best = optimize.minimize(focal, np.log(prior), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12}).x
    assert focal(ours) <= focal(best) * (1 + 1e-6)
    assert fxgb.objective("cross_entropy").binary_base_score(data["binary"]) == pytest.approx(
        np.log(data["binary"].mean() / (1 - data["binary"].mean())), rel=1e-10)


def test_link_and_predict_helpers(data):
    X, y = data["X"], data["multi"]
    obj = fxgb.objective("softmax_focal_loss", gamma=1.0)
    booster = xgb.train({"num_class": CLASSES, "nthread": 1, "base_score": obj.base_score(y)},
                        xgb.DMatrix(X, y), ROUNDS, obj=obj)
    m = booster.predict(xgb.DMatrix(X), output_margin=True).astype(np.float64)
    np.testing.assert_allclose(obj.predict(booster, X), np.exp(m) / np.exp(m).sum(axis=1, keepdims=True), rtol=1e-6)
    lobj = flgb.objective("huber_loss", delta=5.0)
    yr = data["regression"]
    booster = lgb.train({"objective": lobj, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, yr, init_score=lobj.init_score(yr)),
                        ROUNDS)
    before = booster.predict(X, raw_score=True)
    flgb.bake_base_score(booster, lobj.base_score(yr))
    np.testing.assert_allclose(lobj.predict(booster, X), before + lobj.base_score(yr), rtol=1e-12)
    loaded = lgb.Booster(model_str=booster.model_to_string())
    np.testing.assert_allclose(loaded.predict(X, raw_score=True), before + lobj.base_score(yr), rtol=1e-12)


def test_objectives_pickle_without_buffers(data):
    import pickle

    obj = flgb.objective("cross_entropy", label_smoothing=0.1, hessian="exact")
    z = np.zeros((N, CLASSES))
    obj(data["multi"], z)
    clone = pickle.loads(pickle.dumps(obj))
    assert clone._outputs is None and repr(clone) == repr(obj)
    np.testing.assert_array_equal(clone(data["multi"], z)[1], obj(data["multi"], z)[1])
