"""fastloss.xgboost.XGBClassifier/XGBRegressor and fastloss.lightgbm.LGBMClassifier/LGBMRegressor.

On scikit-learn's shipped data (no download): the models are as good as the booster's built-in
objective for the same loss (the reference is the booster itself), better than the best constant
for the losses no booster has, never stop after one tree, and predict the same after pickling /
saving and loading, with nothing added back by the user. ``check_estimator`` fails no check the
parent estimator passes. The full comparison is ``benchmarks/gbdt_defaults.py``.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
lgb = pytest.importorskip("lightgbm")
datasets = pytest.importorskip("sklearn.datasets")

from fastloss import lightgbm as flgb
from fastloss import xgboost as fxgb
from sklearn.base import clone
from sklearn.model_selection import train_test_split

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def split(X, y, stratify=True):
    return train_test_split(X, y, test_size=0.25, random_state=0, stratify=y if stratify else None)


@pytest.fixture(scope="module")
def digits():
    X, y = datasets.load_digits(return_X_y=True)
    return split(X, y)


@pytest.fixture(scope="module")
def diabetes():
    X, y = datasets.load_diabetes(return_X_y=True)
    return split(X, y, stratify=False)


@pytest.fixture(scope="module")
def cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return split(X, y)


def log_loss(p, y):
    return float(np.mean(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1))))


def huber(pred, y, delta):
    e = np.abs(pred - y)
    return float(np.mean(np.where(e < delta, 0.5 * e * e, delta * (e - 0.5 * delta))))


def split_trees(model):
    if isinstance(model, xgb.XGBModel):
        return sum("[" in t.split("\n")[0] for t in model.get_booster().get_dump())
    return sum(t["num_leaves"] > 1 for t in model.booster_.dump_model()["tree_info"])


# ---- the issue's examples and the quality targets ------------------------------------------------


def test_issue_examples_just_work(digits, diabetes):
    X, _, y, _ = diabetes
    pred = flgb.LGBMRegressor(loss="huber_loss", verbose=-1, n_jobs=1).fit(X, y).predict(X)
    assert pred.shape == y.shape and np.sqrt(np.mean((pred - y) ** 2)) < 0.8 * np.std(y)
    X, _, y, _ = digits
    proba = fxgb.XGBClassifier(n_jobs=1, loss="softmax_focal_loss", loss_options={"gamma": 2.0}, n_estimators=10).fit(X, y) \
        .predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(proba.argmax(axis=1) == y) > 0.9


@pytest.mark.parametrize("ours, theirs", [
    (lambda: fxgb.XGBClassifier(n_jobs=1, n_estimators=30), lambda: xgb.XGBClassifier(n_jobs=1, n_estimators=30)),
    (lambda: flgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1), lambda: lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1)),
], ids=["xgboost", "lightgbm"])
def test_cross_entropy_as_good_as_builtin(digits, ours, theirs):
    X, Xt, y, yt = digits
    a = log_loss(ours().fit(X, y).predict_proba(Xt), yt)
    b = log_loss(theirs().fit(X, y).predict_proba(Xt), yt)
    assert a <= 1.01 * b


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_binary_cross_entropy_as_good_as_builtin(cancer, kind):
    X, Xt, y, yt = cancer
    if kind == "xgboost":
        a = fxgb.XGBClassifier(n_jobs=1, loss="binary_cross_entropy_with_logits", n_estimators=30).fit(X, y)
        b = xgb.XGBClassifier(n_jobs=1, n_estimators=30).fit(X, y)
    else:
        a = flgb.LGBMClassifier(loss="binary_cross_entropy_with_logits", n_estimators=30, verbose=-1, n_jobs=1).fit(X, y)
        b = lgb.LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1).fit(X, y)
    assert log_loss(a.predict_proba(Xt), yt) <= 1.01 * log_loss(b.predict_proba(Xt), yt)


@pytest.mark.parametrize("delta", [1.0, 30.0])
def test_huber_never_stops_after_one_tree(diabetes, delta):
    """The issue's case: Huber with the exact Hessian stopped after one tree on diabetes."""
    X, Xt, y, yt = diabetes
    ours = flgb.LGBMRegressor(loss="huber_loss", loss_options={"delta": delta}, verbose=-1, n_jobs=1).fit(X, y)
    theirs = lgb.LGBMRegressor(objective="huber", alpha=delta, verbose=-1, n_jobs=1).fit(X, y)
    assert split_trees(ours) == 100
    assert huber(ours.predict(Xt), yt, delta) <= 1.01 * huber(theirs.predict(Xt), yt, delta)
    xgb_ours = fxgb.XGBRegressor(n_jobs=1, loss="huber_loss", loss_options={"delta": delta}).fit(X, y)
    assert split_trees(xgb_ours) == 100
    constant = huber(np.full(len(yt), fxgb.objective("huber_loss", delta=delta).base_score(y)), yt, delta)
    assert huber(xgb_ours.predict(Xt), yt, delta) < 0.9 * constant


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_l1_as_good_as_builtin(diabetes, kind):
    X, Xt, y, yt = diabetes
    if kind == "xgboost":
        a = fxgb.XGBRegressor(n_jobs=1, loss="l1_loss").fit(X, y)
        b = xgb.XGBRegressor(n_jobs=1, objective="reg:absoluteerror").fit(X, y)
    else:
        a = flgb.LGBMRegressor(loss="l1_loss", verbose=-1, n_jobs=1).fit(X, y)
        b = lgb.LGBMRegressor(objective="l1", verbose=-1, n_jobs=1).fit(X, y)
    assert np.mean(np.abs(a.predict(Xt) - yt)) <= 1.01 * np.mean(np.abs(b.predict(Xt) - yt))


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
@pytest.mark.parametrize("loss", ["log_cosh_loss", "smooth_l1_loss"])
def test_losses_without_builtin_beat_the_constant(diabetes, kind, loss):
    X, Xt, y, yt = diabetes
    cls = fxgb.XGBRegressor if kind == "xgboost" else flgb.LGBMRegressor
    model = cls(loss=loss, n_estimators=50, n_jobs=1, **({} if kind == "xgboost" else {"verbose": -1})).fit(X, y)
    start = (fxgb if kind == "xgboost" else flgb).objective(loss).base_score(y)
    assert split_trees(model) == 50
    assert np.mean(np.abs(model.predict(Xt) - yt)) < 0.9 * np.mean(np.abs(start - yt))


# ---- saving, loading, parameters -------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["softmax_focal_loss", "cross_entropy", "multiclass_hinge_loss"])
def test_xgboost_classifier_save_load(tmp_path, digits, loss):
    X, Xt, y, _ = digits
    model = fxgb.XGBClassifier(n_jobs=1, loss=loss, n_estimators=5).fit(X, y)
    proba = model.predict_proba(Xt)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(Xt), proba)
    path = str(tmp_path / "model.json")
    model.save_model(path)
    for cls in (fxgb.XGBClassifier, xgb.XGBClassifier):  # the start lives in the file: XGBoost's own class agrees
        loaded = cls(n_jobs=1)
        loaded.load_model(path)
        np.testing.assert_array_equal(loaded.predict_proba(Xt), proba)
        np.testing.assert_array_equal(loaded.predict(Xt), model.predict(Xt))


def test_xgboost_regressor_save_load(tmp_path, diabetes):
    X, Xt, y, _ = diabetes
    model = fxgb.XGBRegressor(n_jobs=1, loss="l1_loss", n_estimators=5).fit(X, y)
    path = str(tmp_path / "model.ubj")
    model.save_model(path)
    booster = xgb.Booster(model_file=path)
    np.testing.assert_array_equal(booster.predict(xgb.DMatrix(Xt)), model.predict(Xt))
    assert abs(np.median(model.predict(Xt)) - np.median(y)) < 0.5 * np.std(y)  # started at the median, not 0.5


@pytest.mark.parametrize("loss", ["cross_entropy", "sigmoid_focal_loss", "hinge_loss"])
def test_lightgbm_binary_save_load(tmp_path, cancer, loss):
    X, Xt, y, _ = cancer
    model = flgb.LGBMClassifier(loss=loss, n_estimators=10, verbose=-1, n_jobs=1).fit(X, y)
    proba = model.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(Xt), model.classes_[proba.argmax(axis=1)])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict_proba(Xt), proba)
    path = str(tmp_path / "model.txt")
    model.booster_.save_model(path)
    raw = lgb.Booster(model_file=path).predict(Xt, raw_score=True)  # the starting score is in the trees
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), proba[:, 1], rtol=1e-12)


def test_lightgbm_multiclass_save_load(digits):
    X, Xt, y, _ = digits
    model = flgb.LGBMClassifier(loss="softmax_focal_loss", loss_options={"gamma": 1.0}, n_estimators=5,
                                verbose=-1, n_jobs=1).fit(X, y)
    raw = lgb.Booster(model_str=model.booster_.model_to_string()).predict(Xt, raw_score=True)
    e = np.exp(raw - raw.max(axis=1, keepdims=True))
    np.testing.assert_allclose(model.predict_proba(Xt), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(Xt), model.predict(Xt))


def test_params_clone_and_errors(diabetes):
    X, _, y, _ = diabetes
    model = flgb.LGBMRegressor(loss="huber_loss", loss_options={"delta": 5.0}, n_estimators=3, verbose=-1, n_jobs=1)
    params = model.get_params()
    assert params["loss"] == "huber_loss" and params["loss_options"] == {"delta": 5.0} and params["n_estimators"] == 3
    model.fit(X, y)
    assert model.get_params() == params  # fit changes no parameter
    twin = clone(model).set_params(loss="l1_loss", loss_options=None)
    assert twin.get_params()["loss"] == "l1_loss" and twin.fit(X, y).predict(X).shape == y.shape
    xmodel = fxgb.XGBRegressor(n_jobs=1, loss="huber_loss", loss_options={"delta": 5.0}, n_estimators=3, max_depth=2)
    xparams = xmodel.get_params()
    assert xparams["loss_options"] == {"delta": 5.0} and xparams["max_depth"] == 2
    xmodel.fit(X, y)
    assert xmodel.get_params() == xparams
    with pytest.raises(ValueError, match="loss must be one of"):
        fxgb.XGBRegressor(n_jobs=1, loss="cross_entropy").fit(X, y)
    with pytest.raises(ValueError, match="sets the objective from loss"):
        flgb.LGBMRegressor(objective="huber").fit(X, y)
    with pytest.raises(TypeError, match="unexpected option"):
        flgb.LGBMRegressor(loss="huber_loss", loss_options={"beta": 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="binary loss"):
        fxgb.XGBClassifier(n_jobs=1, loss="hinge_loss").fit(X[:30], np.arange(30) % 3)


# ---- scikit-learn's estimator checks: no failure the parent does not have -------------------------


def _failures(estimator):
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    return {r["check_name"] for r in results if r["status"] == "failed"}


@pytest.mark.parametrize("ours, parent", [
    (lambda: fxgb.XGBRegressor(n_jobs=1, loss="huber_loss", n_estimators=5), lambda: xgb.XGBRegressor(n_jobs=1, n_estimators=5)),
    (lambda: fxgb.XGBClassifier(n_jobs=1, n_estimators=5), lambda: xgb.XGBClassifier(n_jobs=1, n_estimators=5)),
    (lambda: flgb.LGBMRegressor(loss="l1_loss", n_estimators=5, n_jobs=1, verbose=-1),
     lambda: lgb.LGBMRegressor(n_estimators=5, n_jobs=1, verbose=-1)),
    (lambda: flgb.LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1),
     lambda: lgb.LGBMClassifier(n_estimators=5, n_jobs=1, verbose=-1)),
], ids=["XGBRegressor", "XGBClassifier", "LGBMRegressor", "LGBMClassifier"])
def test_check_estimator_like_the_parent(ours, parent):
    assert _failures(ours()) <= _failures(parent())
