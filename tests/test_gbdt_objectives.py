"""fastloss.xgboost / fastloss.lightgbm objectives train the same models as NumPy objectives.

Each NumPy objective here is written from the loss's formula alone: closed forms where they are
short (softmax cross-entropy, huber, smooth L1), else the closed-form gradient and a central
difference of it for the Hessian diagonal (focal losses; float64, error ~1e-9, far below the
float32 the boosters keep). A model trained with the fastloss objective must predict what the
model trained with the NumPy one predicts. Small data and a few rounds keep the file fast.
"""

from __future__ import annotations

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")

from fastloss import lightgbm as flgb
from fastloss import xgboost as fxgb

ROUNDS = 4
N, FEATURES, CLASSES = 400, 6, 4


# ---- the NumPy objectives: (margins, labels) -> (grad, hess) of the unweighted loss, float64 ----------


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_cross_entropy(z, y):
    p = _softmax(z)
    onehot = np.eye(z.shape[1])[y]
    return p - onehot, p * (1.0 - p)


def _focal_grad(z, y, gamma):
    p = _softmax(z)
    onehot = np.eye(z.shape[1])[y]
    pt = p[np.arange(len(y)), y]
    # l = -(1-p_t)^gamma log p_t; dl/dlog p_t = gamma (1-p_t)^(gamma-1) p_t log p_t - (1-p_t)^gamma
    d = gamma * (1 - pt) ** (gamma - 1) * pt * np.log(pt) - (1 - pt) ** gamma
    return d[:, None] * (onehot - p)


def _central_diagonal(grad_fn, z, step=1e-5):
    hess = np.empty_like(z)
    for idx in np.ndindex(*z.shape[1:]) if z.ndim > 1 else [()]:
        e = np.zeros_like(z)
        e[(slice(None),) + idx] = step
        hess[(slice(None),) + idx] = ((grad_fn(z + e) - grad_fn(z - e)) / (2 * step))[(slice(None),) + idx]
    return hess


def np_softmax_focal(gamma):
    def obj(z, y):
        return _focal_grad(z, y, gamma), _central_diagonal(lambda v: _focal_grad(v, y, gamma), z)
    return obj


def np_sigmoid_focal(alpha, gamma):
    def grad(x, y):
        p = 1 / (1 + np.exp(-x))
        ce = np.logaddexp(0, x) - x * y
        one_minus_pt = p * (1 - y) + (1 - p) * y
        dce, dom = p - y, p * (1 - p) * (1 - 2 * y)
        g = dce * one_minus_pt**gamma + ce * gamma * one_minus_pt ** (gamma - 1) * dom
        return (alpha * y + (1 - alpha) * (1 - y)) * g

    def obj(x, y):
        return grad(x, y), _central_diagonal(lambda v: grad(v, y), x)
    return obj


def np_huber(delta):
    def obj(x, y):
        e = x - y
        return np.clip(e, -delta, delta), (np.abs(e) < delta).astype(np.float64)
    return obj


def np_smooth_l1(beta):
    def obj(x, y):
        e = x - y
        small = np.abs(e) < beta
        return np.where(small, e / beta, np.sign(e)), small / beta
    return obj


def weighted(obj, z, y, w):
    g, h = obj(z, y)
    if w is not None:
        w = w.reshape((-1,) + (1,) * (g.ndim - 1))
        g, h = g * w, h * w
    return g, h


# ---- data -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((N, FEATURES))
    logits = X[:, :CLASSES] * 2 + rng.standard_normal((N, CLASSES))
    return {
        "X": X,
        "multi": np.argmax(logits, axis=1),
        "binary": (X[:, 0] + 0.5 * rng.standard_normal(N) > 0).astype(np.float64),
        "regression": X[:, 0] * 3 + np.abs(X[:, 1]) + rng.standard_t(2, N),
        "weight": rng.uniform(0.2, 3.0, N),
    }


MULTI = [("cross_entropy", {}, np_cross_entropy), ("softmax_focal_loss", {"gamma": 2.0}, np_softmax_focal(2.0)),
         ("softmax_focal_loss", {"gamma": 0.5}, np_softmax_focal(0.5))]
BINARY = [("sigmoid_focal_loss", {"alpha": 0.25, "gamma": 2.0}, np_sigmoid_focal(0.25, 2.0))]
REGRESSION = [("huber_loss", {"delta": 1.5}, np_huber(1.5)), ("smooth_l1_loss", {"beta": 0.5}, np_smooth_l1(0.5))]
PROBLEMS = [(t, *c) for t, cases in (("multi", MULTI), ("binary", BINARY), ("regression", REGRESSION)) for c in cases]
IDS = [f"{t}-{name}-{opts}" for t, name, opts, _ in PROBLEMS]


def assert_same_model(a, b):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4)


# ---- XGBoost ----------------------------------------------------------------------------------------

XGB_PARAMS = {"tree_method": "hist", "max_depth": 3, "eta": 0.3, "base_score": 0.0, "nthread": 1}


@pytest.mark.parametrize("task, loss, opts, reference", PROBLEMS, ids=IDS)
@pytest.mark.parametrize("weights", [False, True], ids=["unweighted", "weighted"])
def test_xgboost_train(data, task, loss, opts, reference, weights):
    X, y = data["X"], data[task]
    w = data["weight"] if weights else None
    params = dict(XGB_PARAMS, **({"num_class": CLASSES} if task == "multi" else {}))

    def numpy_obj(predt, dtrain):
        z = predt.astype(np.float64)
        return weighted(reference, z, y.astype(np.int64) if task == "multi" else y, w)

    ours = xgb.train(params, xgb.DMatrix(X, y, weight=w), ROUNDS, obj=fxgb.objective(loss, hessian="exact", **opts))
    theirs = xgb.train(params, xgb.DMatrix(X, y, weight=w), ROUNDS, obj=numpy_obj)
    dm = xgb.DMatrix(X)
    assert_same_model(ours.predict(dm, output_margin=True), theirs.predict(dm, output_margin=True))
    # the objective moved the model: the margins are not their start
    assert np.ptp(ours.predict(dm, output_margin=True)) > 0.1


@pytest.mark.parametrize("task, loss, opts, reference", PROBLEMS, ids=IDS)
def test_xgboost_sklearn(data, task, loss, opts, reference):
    pytest.importorskip("sklearn")
    X, y, w = data["X"], data[task], data["weight"]
    kind = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
    params = dict(XGB_PARAMS, n_estimators=ROUNDS, learning_rate=XGB_PARAMS["eta"])
    params.pop("eta")

    def numpy_obj(y_true, y_pred, sample_weight=None):
        t = y_true.astype(np.int64) if task == "multi" else y_true
        return weighted(reference, y_pred.astype(np.float64), t, sample_weight)

    ours = kind(objective=fxgb.objective(loss, hessian="exact", **opts), **params).fit(X, y, sample_weight=w)
    theirs = kind(objective=numpy_obj, **params).fit(X, y, sample_weight=w)
    assert_same_model(ours.predict(X, output_margin=True), theirs.predict(X, output_margin=True))


# ---- LightGBM ---------------------------------------------------------------------------------------

LGB_PARAMS = {"num_leaves": 7, "learning_rate": 0.3, "min_data_in_leaf": 5, "verbose": -1, "num_threads": 1,
              "deterministic": True, "force_row_wise": True}


@pytest.mark.parametrize("task, loss, opts, reference", PROBLEMS, ids=IDS)
@pytest.mark.parametrize("weights", [False, True], ids=["unweighted", "weighted"])
def test_lightgbm_train(data, task, loss, opts, reference, weights):
    X, y = data["X"], data[task]
    w = data["weight"] if weights else None
    params = dict(LGB_PARAMS, **({"num_class": CLASSES} if task == "multi" else {}))

    def numpy_obj(preds, train_data):
        return weighted(reference, preds.astype(np.float64), y.astype(np.int64) if task == "multi" else y, w)

    ours = lgb.train(dict(params, objective=flgb.objective(loss, hessian="exact", **opts)), lgb.Dataset(X, y, weight=w), ROUNDS)
    theirs = lgb.train(dict(params, objective=numpy_obj), lgb.Dataset(X, y, weight=w), ROUNDS)
    assert_same_model(ours.predict(X, raw_score=True), theirs.predict(X, raw_score=True))
    assert np.ptp(ours.predict(X, raw_score=True)) > 0.1


@pytest.mark.parametrize("task, loss, opts, reference", PROBLEMS, ids=IDS)
def test_lightgbm_sklearn(data, task, loss, opts, reference):
    pytest.importorskip("sklearn")
    X, y, w = data["X"], data[task], data["weight"]
    kind = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    params = dict(LGB_PARAMS, n_estimators=ROUNDS)

    def numpy_obj(y_true, y_pred, weight):
        t = y_true.astype(np.int64) if task == "multi" else y_true
        return weighted(reference, y_pred.astype(np.float64), t, weight)

    ours = kind(objective=flgb.objective(loss, hessian="exact", **opts), **params).fit(X, y, sample_weight=w)
    theirs = kind(objective=numpy_obj, **params).fit(X, y, sample_weight=w)
    assert_same_model(ours.predict(X, raw_score=True), theirs.predict(X, raw_score=True))


# ---- layouts and errors -----------------------------------------------------------------------------


def test_flat_layouts(data):
    """A flat array of margins: sample-major for XGBoost, class-major for LightGBM."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((N, CLASSES))
    y = data["multi"]
    g_ref, h_ref = np_cross_entropy(z, y)
    g, h = fxgb.objective("cross_entropy", hessian="exact")(y.astype(np.float32), z.reshape(-1))
    np.testing.assert_allclose(h.reshape(N, CLASSES), h_ref, rtol=1e-12, atol=1e-15)
    g, h = flgb.objective("cross_entropy", hessian="exact")(z.T.reshape(-1), _Labels(y))
    np.testing.assert_allclose(g.reshape(CLASSES, N).T, g_ref, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(h.reshape(CLASSES, N).T, h_ref, rtol=1e-12, atol=1e-15)
    g, h = flgb.objective("cross_entropy", hessian="exact")(np.asfortranarray(z), _Labels(y))
    assert h.shape == (N, CLASSES) and h.flags.f_contiguous  # LightGBM ravels it in F order for free
    np.testing.assert_allclose(h, h_ref, rtol=1e-12, atol=1e-15)


class _Labels:
    """The part of a DMatrix / lgb.Dataset the objectives read."""

    def __init__(self, y, w=None):
        self.y, self.w = y, w

    def get_label(self):
        return self.y

    def get_weight(self):
        return self.w


def test_errors():
    with pytest.raises(ValueError, match="loss must be one of"):
        fxgb.objective("nope")
    with pytest.raises(TypeError, match="unexpected option"):
        flgb.objective("huber_loss", beta=1.0)
    with pytest.raises(TypeError, match="unexpected option"):
        fxgb.objective("huber_loss", reduction="sum")
    obj = fxgb.objective("cross_entropy")
    with pytest.raises(ValueError, match="set num_class"):
        obj(np.zeros(15, np.float32), _Labels(np.zeros(10)))
    with pytest.raises(ValueError, match="set num_class for a multi-class model"):  # one margin, labels 0..2
        obj(np.zeros(10, np.float32), _Labels(np.arange(10) % 3))
    with pytest.raises(ValueError, match="hessian must be one of"):
        flgb.objective("huber_loss", hessian="diagonal")
    with pytest.raises(ValueError, match="class indices"):
        obj(np.zeros((3, 2), np.float32), _Labels(np.array([0.0, 0.5, 1.0])))
    with pytest.raises(ValueError, match="sample weights"):
        obj(np.zeros((3, 2), np.float32), _Labels(np.zeros(3), np.ones(4)))
    assert "cross_entropy" in repr(obj)


def test_outputs_are_reused_unless_asked_not_to():
    z = np.random.default_rng(4).standard_normal((50, 3)).astype(np.float32)
    labels = _Labels(np.arange(50) % 3)
    obj = fxgb.objective("cross_entropy")
    g1, h1 = obj(z, labels)
    first = h1.copy()
    g2, h2 = obj(z * 2, labels)
    assert g2 is g1 and h2 is h1 and not np.array_equal(h2, first)  # written again by the next round
    fresh = flgb.objective("cross_entropy", reuse_outputs=False)
    a, b = fresh(z, labels), fresh(z, labels)
    assert a[1] is not b[1] and np.array_equal(a[1], b[1])


def test_pseudo_huber_trains_what_xgboosts_own_pseudohubererror_trains():
    """pseudo_huber_loss_grad_hess as a custom objective against XGBoost's built-in
    reg:pseudohubererror (huber_slope = delta): the same trees, so the same predictions."""
    import fastloss

    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, FEATURES))
    y = 3 * X[:, 0] + rng.standard_t(2, size=N)  # heavy tails: both regimes of the loss
    data = xgb.DMatrix(X, label=y)
    params = {"max_depth": 3, "eta": 0.3, "base_score": 0.0}
    builtin = xgb.train({**params, "objective": "reg:pseudohubererror", "huber_slope": 0.7}, data, ROUNDS)

    def objective(pred, dmatrix):
        return fastloss.pseudo_huber_loss_grad_hess(pred, dmatrix.get_label(), delta=0.7)

    ours = xgb.train(params, data, ROUNDS, obj=objective)
    np.testing.assert_allclose(ours.predict(data), builtin.predict(data), rtol=0, atol=1e-5)
