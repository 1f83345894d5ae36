"""fastloss objectives in distributed boosting: ``xgboost.dask`` and LightGBM's Dask estimators.

A local cluster of two worker processes on loopback: the objective is pickled to the workers
(without its output buffers) and each computes the gradients of its own partition. The reference
is the same booster trained on one machine with the same objective and starting score; the
features take few distinct values, so the distributed quantile sketch finds the same bins and the
models agree to float rounding.
"""

from __future__ import annotations

# The test extra installs all of them: a missing one fails the run, never skips it.
import dask.array as da
import distributed
import lightgbm as lgb
import numpy as np
import pytest
import xgboost as xgb
import xgboost.dask
from fastloss import lightgbm as flgb
from fastloss import xgboost as fxgb

N, CLASSES, ROUNDS = 400, 3, 5


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(9)
    X = rng.integers(0, 8, (N, 4)).astype(np.float64)  # 8 values per feature: every sketch finds the same bins
    score = X[:, :CLASSES] + rng.standard_normal((N, CLASSES))
    return X, np.argmax(score, axis=1), 3 * X[:, 0] - X[:, 1] + rng.standard_t(2, N)


def test_xgboost_dask_multiclass(client, data):
    from xgboost import dask as dxgb

    X, y, _ = data
    obj = fxgb.objective("softmax_focal_loss", gamma=2.0)
    params = {"num_class": CLASSES, "max_depth": 3, "tree_method": "hist", "nthread": 1, "base_score": obj.base_score(y)}
    dX, dy = da.from_array(X, chunks=N // 2), da.from_array(y, chunks=N // 2)
    out = dxgb.train(client, params, dxgb.DaskDMatrix(client, dX, dy), ROUNDS, obj=obj)
    single = xgb.train(params, xgb.DMatrix(X, y), ROUNDS, obj=obj)
    dist = out["booster"].predict(xgb.DMatrix(X), output_margin=True)
    np.testing.assert_allclose(dist, single.predict(xgb.DMatrix(X), output_margin=True), rtol=1e-5, atol=1e-5)
    assert np.ptp(dist) > 0.5  # trees were grown
    np.testing.assert_allclose(obj.predict(out["booster"], X).sum(axis=1), 1.0, rtol=1e-5)


def test_xgboost_dask_regression_estimator(client, data):
    from xgboost import dask as dxgb

    X, _, y = data
    obj = fxgb.objective("huber_loss", delta=1.0)
    kw = {"n_estimators": ROUNDS, "max_depth": 3, "n_jobs": 1, "objective": obj, "base_score": obj.base_score(y)}
    model = dxgb.DaskXGBRegressor(**kw)
    model.client = client
    model.fit(da.from_array(X, chunks=N // 2), da.from_array(y, chunks=N // 2))
    single = xgb.XGBRegressor(**kw).fit(X, y)
    np.testing.assert_allclose(model.predict(da.from_array(X, chunks=N // 2)).compute(), single.predict(X),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:Parameter n_jobs will be ignored")  # LightGBM's Dask sets its own threads
def test_lightgbm_dask_regression(client, data):
    X, _, y = data
    obj = flgb.objective("huber_loss", delta=1.0)
    start = obj.base_score(y)
    kw = {"n_estimators": ROUNDS, "num_leaves": 7, "min_child_samples": 5, "verbose": -1,
          "objective": obj, "deterministic": True, "force_row_wise": True}
    dX, dy = da.from_array(X, chunks=N // 2), da.from_array(y, chunks=N // 2)
    model = lgb.DaskLGBMRegressor(client=client, tree_learner="data", **kw)
    model.fit(dX, dy, init_score=da.from_array(np.full(N, start), chunks=N // 2))
    single = lgb.LGBMRegressor(n_jobs=1, **kw).fit(X, y, init_score=np.full(N, start))
    dist, one = model.to_local().predict(X, raw_score=True), single.predict(X, raw_score=True)
    np.testing.assert_allclose(dist, one, rtol=1e-6, atol=1e-6)
    assert np.ptp(dist) > 0.5
