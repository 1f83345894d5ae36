"""fastloss boosting estimators against the boosters' built-in objectives, default parameters.

For each data set (scikit-learn's shipped digits, wine, breast_cancer, diabetes, and larger
synthetic sets) and each fastloss loss, ``fastloss.xgboost.XGB*`` / ``fastloss.lightgbm.LGBM*``
with ``loss=...`` and every booster parameter at its default is compared on a 25 % test split
with the booster's built-in objective for the same loss (cross-entropy: ``multi:softprob`` /
``multiclass``; BCE: ``binary:logistic`` / ``binary``; MSE; Huber: LightGBM's ``huber`` and
XGBoost's ``reg:pseudohubererror``, the nearest it has; L1: ``reg:absoluteerror`` / ``l1``), and
with the best constant predictor (the loss's own starting score) for the losses no booster has
(focal, hinge, log-cosh, smooth-L1). The metric is the loss itself on the test split, computed
here in NumPy float64 from the models' margins (and accuracy for classifiers). ``splits`` counts
the trees that split at least once (a model that "stops after one tree" shows 0 or 1).

Usage: ``PYTHONPATH=python python benchmarks/gbdt_defaults.py [--quick] [--out FILE]``
(``--quick``: the shipped data sets only). One thread everywhere (``n_jobs=1``): with
more OpenMP threads than free cores, XGBoost's spinning workers and fastloss's threads slow each
other down by orders of magnitude on a shared machine; the models do not depend on it. Results: ``benchmarks/results/gbdt_defaults.txt``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

THREADS = 1  # n_jobs of both boosters and fastloss's threads: the shared machine's honest setting

# ---- the metrics: each loss on test margins, NumPy float64, from the formulas -------------------


def softmax(m):
    e = np.exp(m - m.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid(m):
    return 0.5 * (1.0 + np.tanh(0.5 * m))


def log_loss(m, y):
    """Mean negative log-likelihood of the labels: softmax of (n, K) margins, sigmoid of (n,)."""
    if m.ndim == 2:
        p = softmax(m)[np.arange(len(y)), y]
    else:
        p = np.where(y == 1, sigmoid(m), 1.0 - sigmoid(m))
    return float(np.mean(-np.log(np.clip(p, 1e-15, 1.0))))


def softmax_focal(m, y, gamma):
    pt = np.clip(softmax(m)[np.arange(len(y)), y], 1e-15, 1.0)
    return float(np.mean(-((1.0 - pt) ** gamma) * np.log(pt)))


def sigmoid_focal(m, y, alpha=0.25, gamma=2.0):
    p = sigmoid(m)
    pt = np.where(y == 1, p, 1.0 - p)
    a = np.where(y == 1, alpha, 1.0 - alpha)
    return float(np.mean(-a * (1.0 - pt) ** gamma * np.log(np.clip(pt, 1e-15, 1.0))))


def hinge(m, y):
    return float(np.mean(np.maximum(0.0, 1.0 - np.where(y == 1, 1.0, -1.0) * m)))


def multiclass_hinge(m, y):
    rows = np.arange(len(y))
    others = m.copy()
    others[rows, y] = -np.inf
    return float(np.mean(np.maximum(0.0, 1.0 + others.max(axis=1) - m[rows, y])))


def huber(m, y, delta):
    e = np.abs(m - y)
    return float(np.mean(np.where(e < delta, 0.5 * e * e, delta * (e - 0.5 * delta))))


def accuracy(m, y):
    pred = np.argmax(m, axis=1) if m.ndim == 2 else (m > 0).astype(int)
    return float(np.mean(pred == y))


METRICS = {
    "cross_entropy": ("log-loss", lambda m, y, o: log_loss(m, y)),
    "binary_cross_entropy_with_logits": ("log-loss", lambda m, y, o: log_loss(m, y)),
    "softmax_focal_loss": ("focal", lambda m, y, o: softmax_focal(m, y, o.get("gamma", 2.0))),
    "sigmoid_focal_loss": ("focal", lambda m, y, o: sigmoid_focal(m, y)),
    "multiclass_hinge_loss": ("hinge", lambda m, y, o: multiclass_hinge(m, y)),
    "hinge_loss": ("hinge", lambda m, y, o: hinge(m, y)),
    "mse_loss": ("RMSE", lambda m, y, o: float(np.sqrt(np.mean((m - y) ** 2)))),
    "l1_loss": ("MAE", lambda m, y, o: float(np.mean(np.abs(m - y)))),
    "huber_loss": ("Huber", lambda m, y, o: huber(m, y, o.get("delta", 1.0))),
    "smooth_l1_loss": ("Huber", lambda m, y, o: huber(m, y, o.get("beta", 1.0))),
    "log_cosh_loss": ("log-cosh", lambda m, y, o: float(np.mean(np.logaddexp(m - y, y - m) - np.log(2.0)))),
}

# ---- the cases ---------------------------------------------------------------------------------------

# (loss, options, XGBoost built-in params or None, LightGBM built-in params or None)
MULTI = [
    ("cross_entropy", {}, {"objective": "multi:softprob"}, {"objective": "multiclass"}),
    ("softmax_focal_loss", {"gamma": 2.0}, None, None),
    ("multiclass_hinge_loss", {}, None, None),
]
BINARY = [
    ("binary_cross_entropy_with_logits", {}, {"objective": "binary:logistic"}, {"objective": "binary"}),
    ("cross_entropy", {}, {"objective": "binary:logistic"}, {"objective": "binary"}),
    ("sigmoid_focal_loss", {}, None, None),
    ("hinge_loss", {}, None, None),
]


def regression_cases(delta):
    return [
        ("mse_loss", {}, {"objective": "reg:squarederror"}, {"objective": "regression"}),
        ("huber_loss", {"delta": delta}, {"objective": "reg:pseudohubererror", "huber_slope": delta},
         {"objective": "huber", "alpha": delta}),
        ("huber_loss", {"delta": 1.0}, {"objective": "reg:pseudohubererror", "huber_slope": 1.0},
         {"objective": "huber", "alpha": 1.0}),
        ("smooth_l1_loss", {"beta": delta}, None, {"objective": "huber", "alpha": delta}),
        ("l1_loss", {}, {"objective": "reg:absoluteerror"}, {"objective": "l1"}),
        ("log_cosh_loss", {}, None, None),
    ]


def datasets(quick):
    from sklearn import datasets as d

    out = [("digits", *d.load_digits(return_X_y=True), "multi"),
           ("wine", *d.load_wine(return_X_y=True), "multi"),
           ("breast_cancer", *d.load_breast_cancer(return_X_y=True), "binary"),
           ("diabetes", *d.load_diabetes(return_X_y=True), "regression")]
    if not quick:
        X, y = d.make_classification(20000, 20, n_informative=10, n_classes=5, n_clusters_per_class=2,
                                     flip_y=0.05, random_state=0)
        out.append(("synthetic 20k x 20, 5 classes", X, y, "multi"))
        X, y = d.make_classification(20000, 20, n_informative=8, weights=[0.8], flip_y=0.02, random_state=1)
        out.append(("synthetic 20k x 20, binary", X, y, "binary"))
        X, y = d.make_regression(20000, 20, n_informative=10, noise=10.0, random_state=2)
        rng = np.random.default_rng(2)
        y = y + rng.standard_t(2, y.size) * 20.0  # heavy-tailed noise: where Huber / L1 matter
        out.append(("synthetic 20k x 20, t(2) noise", X, y, "regression"))
    return out


# ---- fitting -----------------------------------------------------------------------------------------


def split_trees(booster_kind, model):
    """Trees with at least one split, of all trees."""
    if booster_kind == "xgb":
        dump = model.get_booster().get_dump()
        return sum("[" in t.split("\n")[0] for t in dump), len(dump)
    info = model.booster_.dump_model()["tree_info"]
    return sum(t["num_leaves"] > 1 for t in info), len(info)


def margins(booster_kind, model, X):
    if booster_kind == "xgb":
        return np.asarray(model.predict(X, output_margin=True), dtype=np.float64)
    return np.asarray(model.predict(X, raw_score=True), dtype=np.float64)


def fit_ours(booster_kind, task, loss, opts, X, y, hessian="auto"):
    import fastloss.lightgbm as flgb
    import fastloss.xgboost as fxgb

    if booster_kind == "xgb":
        cls = fxgb.XGBRegressor if task == "regression" else fxgb.XGBClassifier
        return cls(loss=loss, loss_options=opts, hessian=hessian, n_jobs=THREADS).fit(X, y)
    cls = flgb.LGBMRegressor if task == "regression" else flgb.LGBMClassifier
    return cls(loss=loss, loss_options=opts, hessian=hessian, verbose=-1, n_jobs=THREADS).fit(X, y)


def fit_builtin(booster_kind, task, params, X, y):
    import lightgbm as lgb
    import xgboost as xgb

    if booster_kind == "xgb":
        cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
        return cls(n_jobs=THREADS, **params).fit(X, y)
    cls = lgb.LGBMRegressor if task == "regression" else lgb.LGBMClassifier
    return cls(verbose=-1, n_jobs=THREADS, **params).fit(X, y)


def constant_margins(booster_kind, task, loss, opts, y_train, n_test):
    import fastloss.lightgbm as flgb
    import fastloss.xgboost as fxgb

    obj = (fxgb if booster_kind == "xgb" else flgb).objective(loss, **opts)
    if task == "regression":
        return np.full(n_test, obj.base_score(y_train))
    if task == "binary":
        return np.full(n_test, obj.binary_base_score(y_train))
    return np.tile(obj.base_score(y_train), (n_test, 1))


def run_case(booster_kind, task, case, data, hessian="auto"):
    loss, opts, xgb_params, lgb_params = case
    X_tr, X_te, y_tr, y_te = data
    name, metric = METRICS[loss]
    t0 = time.perf_counter()
    ours = fit_ours(booster_kind, task, loss, opts, X_tr, y_tr, hessian)
    seconds = time.perf_counter() - t0
    m = margins(booster_kind, ours, X_te)
    row = {"loss": loss + (f" {opts}" if opts else ""), "metric": name, "ours": metric(m, y_te, opts),
           "splits": split_trees(booster_kind, ours), "seconds": seconds}
    if task != "regression":
        row["acc"] = accuracy(m, y_te)
    builtin = xgb_params if booster_kind == "xgb" else lgb_params
    if builtin is not None:
        b = fit_builtin(booster_kind, task, builtin, X_tr, y_tr)
        bm = margins(booster_kind, b, X_te)
        row["builtin"] = metric(bm, y_te, opts)
        row["builtin_name"] = builtin["objective"]
        if task != "regression":
            row["builtin_acc"] = accuracy(bm, y_te)
    row["constant"] = metric(constant_margins(booster_kind, task, loss, opts, y_tr, len(y_te)), y_te, opts)
    return row


def verdict(row):
    """At least as good as the built-in or within 1 % of it; else better than the constant by 10 %+."""
    if "builtin" in row:
        ok = row["ours"] <= row["builtin"] * 1.01 or row["builtin"] == 0
        return ("ok" if ok else "WORSE") + f" ({100 * (row['ours'] / row['builtin'] - 1):+.1f}% vs built-in)"
    ok = row["ours"] <= 0.9 * row["constant"]
    return ("ok" if ok else "WEAK") + f" ({100 * (row['ours'] / row['constant'] - 1):+.0f}% vs constant)"


def format_row(data_name, booster_kind, row):
    builtin = f"{row['builtin']:9.4g} ({row['builtin_name']})" if "builtin" in row else "-"
    acc = f" acc {row['acc']:.4f}" + (f"/{row['builtin_acc']:.4f}" if "builtin_acc" in row else "") \
        if "acc" in row else ""
    s, total = row["splits"]
    return (f"| {data_name} | {'XGBoost' if booster_kind == 'xgb' else 'LightGBM'} | {row['loss']} | "
            f"{row['metric']} | {row['ours']:.4g} | {builtin} | {row['constant']:.4g} | {s}/{total} |"
            f"{acc} | {verdict(row)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the shipped data sets only")
    ap.add_argument("--hessian", default="auto", choices=("auto", "booster", "exact"))
    ap.add_argument("--boosters", default="xgb,lgb")
    ap.add_argument("--out", default=None, help="also write the table to this file")
    args = ap.parse_args()
    import fastloss as fl
    import lightgbm
    import sklearn
    import xgboost
    from sklearn.model_selection import train_test_split

    warnings.filterwarnings("ignore")
    fl.set_num_threads(THREADS)
    lines = [(f"fastloss {fl.__version__}, xgboost {xgboost.__version__}, lightgbm {lightgbm.__version__}, "
             f"scikit-learn {sklearn.__version__}; default booster parameters, 25 % test split (random_state=0), "
             f"hessian={args.hessian!r}"),
             ("metric: the loss on the test split (lower is better); constant: the loss's best constant "
             "(its starting score); splits: trees with a split / trees; acc: ours/built-in"),
             "",
             "| data | booster | fastloss loss | metric | fastloss | built-in | constant | splits | acc | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    for data_name, X, y, task in datasets(args.quick):
        strat = y if task != "regression" else None
        data = train_test_split(X, y, test_size=0.25, random_state=0, stratify=strat)
        scale = float(np.std(data[2]))
        cases = {"multi": MULTI, "binary": BINARY,
                 "regression": regression_cases(round(scale / 2, 0) or 1.0)}[task]
        for booster_kind in args.boosters.split(","):
            for case in cases:
                line = format_row(data_name, booster_kind, run_case(booster_kind, task, case, data, args.hessian))
                print(line, flush=True)
                lines.append(line)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
