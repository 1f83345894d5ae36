"""``*_grad_hess``: gradient and Hessian diagonal of every loss against PyTorch double differentiation.

The oracle differentiates tests/torch_reference.py's unreduced loss twice with torch.autograd in
float64: the gradient of sum_i l_i, then, for each class c, the gradient of sum_i dl_i/dx_ic, whose
entry (i, c) is the diagonal element d2 l_i / dx_ic^2 (rows are independent). PyTorch has no double
backward for multi_margin_loss, so Weston-Watkins is written out here with relu.
"""

from __future__ import annotations

import fastloss
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from problems import CASES, GRAD_TOL, SPECS, all_cases, as_dtype, assert_close, loss_shape, make_problem
from torch_reference import REFERENCES, torch_target


def weston_watkins(s, target, *, reduction="none", margin=1.0, squared=False, weight=None, ignore_index=-100,
                   axis=-1, variant=None):
    rows = s.movedim(axis, -1)
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target))
    s_t = rows.gather(-1, t.unsqueeze(-1))
    h = F.relu(margin + rows - s_t)
    h = torch.where(F.one_hot(t, rows.shape[-1]).bool(), torch.zeros_like(h), h)
    loss = (h**2 if squared else h).sum(-1)
    if weight is not None:
        loss = loss * torch.as_tensor(np.asarray(weight, dtype=np.float64))[t]
    return torch.where(valid, loss, torch.zeros_like(loss))


def torch_grad_hess(name, x, target, opts):
    """(grad, Hessian diagonal) of the unreduced loss, float64 NumPy, by torch.autograd."""
    xt = torch.tensor(np.asarray(x, dtype=np.float64), requires_grad=True)
    t = torch_target(target)
    if name == "multiclass_hinge_loss" and opts.get("variant") == "weston_watkins":
        loss = weston_watkins(xt, t, **opts)
    else:
        loss = REFERENCES[name](xt, t, reduction="none", **opts)
    (g,) = torch.autograd.grad(loss.sum(), xt, create_graph=True)
    hess = torch.zeros_like(xt)
    if not g.requires_grad:  # piecewise linear: the gradient does not depend on x
        return g.detach().numpy(), hess.numpy()
    if not SPECS[name].rowwise:
        (h,) = torch.autograd.grad(g.sum(), xt, allow_unused=True)
        return g.detach().numpy(), (hess if h is None else h).detach().numpy(force=True)
    axis = opts.get("axis", -1)
    gm, hm = g.movedim(axis, -1), hess.movedim(axis, -1)
    for c in range(gm.shape[-1]):
        (h,) = torch.autograd.grad(gm[..., c].sum(), xt, retain_graph=True, allow_unused=True)
        if h is not None:
            hm[..., c] = h.movedim(axis, -1)[..., c]
    return g.detach().numpy(), hess.detach().numpy(force=True)


def call(name, x, target, **kwargs):
    return getattr(fastloss, f"{name}_grad_hess")(x, target, **kwargs)


# Unaligned on purpose: 7 classes (a vector tail on every ISA) and 3 rows per lane block plus a
# tail; the class axis in the middle takes the tile kernels.
SHAPES = {True: [((13, 7), -1), ((3, 6, 5), 1)], False: [((4, 37), -1)]}


@pytest.mark.parametrize("name, case", all_cases())
def test_matches_torch_double_backward(name, case, backend, rng):
    for shape, axis in SHAPES[SPECS[name].rowwise]:
        x, target, opts = make_problem(name, shape, rng, case, axis=axis)
        if SPECS[name].rowwise:
            opts["axis"] = axis
        g_ref, h_ref = torch_grad_hess(name, x, target, opts)
        g, h = call(name, x, target, **opts)
        assert g.dtype == h.dtype == x.dtype and g.shape == h.shape == x.shape
        assert_close(g, g_ref, 1e-10, what=f"{name} grad {shape}")
        assert_close(h, h_ref, 1e-10, what=f"{name} hess {shape}")


@pytest.mark.parametrize("name", list(CASES))
def test_sample_weight_scales_both(name, backend, rng):
    case = CASES[name][-1]
    shape, axis = SHAPES[SPECS[name].rowwise][0]
    x, target, opts = make_problem(name, shape, rng, case)
    w = rng.uniform(0.0, 3.0, loss_shape(name, shape, axis))
    g0, h0 = call(name, x, target, **opts)
    g, h = call(name, x, target, sample_weight=w, **opts)
    wx = w[..., None] if SPECS[name].rowwise else w
    assert_close(g, g0 * wx, 1e-12)
    assert_close(h, h0 * wx, 1e-12)
    _, h1 = call(name, x, target, sample_weight=w.astype(np.float32), **opts)  # any real dtype
    assert_close(h1, h0 * wx.astype(np.float32), 1e-7)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("name", list(CASES))
def test_dtypes_against_float64(name, dtype, backend, rng):
    for case in CASES[name]:
        shape, _ = SHAPES[SPECS[name].rowwise][0]
        x, target, opts = make_problem(name, shape, rng, case, dtype=dtype)
        x64 = x.astype(np.float64)
        t64 = target.astype(np.float64) if target.dtype.kind == "f" else target
        g_ref, h_ref = torch_grad_hess(name, x64, t64, opts)
        g, h = call(name, x, target, **opts)
        assert g.dtype == h.dtype == x.dtype
        tol = GRAD_TOL[dtype] * (4 if dtype != "float32" else 50)  # second derivatives: more rounding
        assert_close(g, g_ref, tol, what=f"{name} {case} grad")
        assert_close(h, h_ref, tol, what=f"{name} {case} hess")


def test_out_pair(backend, rng):
    x, target, opts = make_problem("softmax_focal_loss", (9, 6), rng)
    g0, h0 = call("softmax_focal_loss", x, target, **opts)
    out = (np.empty_like(x), np.empty_like(x))
    res = call("softmax_focal_loss", x, target, out=out, **opts)
    assert res[0] is out[0] and res[1] is out[1]
    np.testing.assert_array_equal(out[0], g0)
    np.testing.assert_array_equal(out[1], h0)
    # Fortran-ordered destinations are filled too (through a contiguous result)
    fout = (np.empty_like(x, order="F"), np.empty_like(x, order="F"))
    call("softmax_focal_loss", x, target, out=fout, **opts)
    np.testing.assert_array_equal(fout[1], h0)


def test_torch_tensors_in_torch_tensors_out(backend, rng):
    x, target, _ = make_problem("huber_loss", (3, 8), rng)
    g, h = call("huber_loss", torch.from_numpy(x), torch.from_numpy(target))
    assert isinstance(g, torch.Tensor) and isinstance(h, torch.Tensor)
    _, h0 = call("huber_loss", x, target)
    np.testing.assert_array_equal(h.numpy(), h0)


@pytest.mark.parametrize("gamma", [0.0, 0.2, 0.5, 0.99, 1.0, 2.0, 5.0])
def test_focal_finite_as_p_t_tends_to_one(gamma, backend):
    """The exact diagonal is finite for every gamma in [0, 5]; where p_t rounds to 1 the terms of
    the form f''(u) (1 - p_t)^2 take their limit 0."""
    for dtype in ("float64", "float32"):
        margins = np.array([0.0, 5.0, 15.0, 30.0, 40.0, 80.0, 200.0, 800.0])
        x = np.zeros((margins.size, 4))
        x[:, 2] = margins
        t = np.full(margins.size, 2)
        g, h = call("softmax_focal_loss", as_dtype(x, dtype), t, gamma=gamma)
        assert np.all(np.isfinite(g)) and np.all(np.isfinite(h)), (g, h)
        _, h64 = call("softmax_focal_loss", x, t, gamma=gamma)
        rows = margins <= 15  # moderate p_t: PyTorch's double backward is exact there
        _, h_ref = torch_grad_hess("softmax_focal_loss", x[rows], t[rows], {"gamma": gamma})
        assert_close(h64[rows], h_ref, 1e-10)
        s = np.linspace(-800, 800, 41)
        for y in (0.0, 1.0):
            g, h = call("sigmoid_focal_loss", as_dtype(s, dtype), as_dtype(np.full_like(s, y), dtype), gamma=gamma)
            assert np.all(np.isfinite(g)) and np.all(np.isfinite(h))


def test_ignored_rows_are_exact_zeros(backend, rng):
    x, target, opts = make_problem("cross_entropy", (20, 5), rng, {"ignore_index": 3, "softcap": 2.0})
    target[::2] = 3
    g, h = call("cross_entropy", x, target, sample_weight=np.full(20, np.inf), **opts)
    assert np.all(g[::2] == 0) and np.all(h[::2] == 0)


@pytest.mark.parametrize("name", ["cross_entropy", "huber_loss"])
def test_errors(name, rng):
    shape = (6, 4)
    x, target, _ = make_problem(name, shape, rng)
    fn = getattr(fastloss, f"{name}_grad_hess")
    with pytest.raises(ValueError, match="sample_weight must have the loss's shape"):
        fn(x, target, sample_weight=np.ones(5))
    with pytest.raises(TypeError, match="sample_weight"):
        fn(x, target, sample_weight=np.array(["a"] * shape[0]))
    with pytest.raises(ValueError, match="out must be a pair"):
        fn(x, target, out=np.empty_like(x))
    with pytest.raises(ValueError, match=r"out\[1\] must have the input's shape"):
        fn(x, target, out=(np.empty_like(x), np.empty((2, 2))))
    with pytest.raises(ValueError, match=r"out\[0\] overlaps the input"):
        fn(x, target, out=(x, np.empty_like(x)))
    buf = np.empty_like(x)
    with pytest.raises(ValueError, match="overlap"):
        fn(x, target, out=(buf, buf))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="not writable"):
        fn(x, target, out=(np.empty_like(x), ro))
    with pytest.raises(TypeError):
        fn(x, target, reduction="sum")  # the form is of the unreduced loss: no reduction argument


def test_every_loss_has_the_form():
    """A new loss needs its NumPy (grad, hess) in _reference_hess and its kernels' Hessian
    (point-wise: grad_hess(x, y) in its header struct; row-wise: its family's hess pass)."""
    from fastloss import _reference_hess

    missing = [spec.name for spec in fastloss.LOSSES if not hasattr(_reference_hess, spec.name)]
    assert not missing, f"add _reference_hess.<name>(x, target, **opts) -> (grad, hess) for {missing}"
    for spec in fastloss.LOSSES:
        fn = getattr(fastloss, f"{spec.name}_grad_hess")
        assert "sample_weight" in fn.__doc__ and "hess" in fn.__doc__
