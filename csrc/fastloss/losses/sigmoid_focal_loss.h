// sigmoid_focal_loss (torchvision formula), elementwise, target y in [0, 1]:
//   p = sigmoid(x), q = 1 - p,  ce = (1 - y) x - log_sigmoid(x) = (1 - y) x - min(x, 0) + log1p(exp(-|x|))
//   (PyTorch's BCE-with-logits form: at x = +inf it gives inf for y < 1 where max(x, 0) - x y gave nan)
//   1 - p_t = p (1 - y) + q y,  l = ce (1 - p_t)^gamma [* (alpha y + (1-alpha)(1-y)) if alpha >= 0]
//   dl/dx = (p - y)(1-p_t)^gamma + ce gamma (1-p_t)^gamma * p q (1 - 2y) / (1 - p_t)
// Stability: one exp(-|x|) <= 1 gives p and q without cancellation for large |x|; the last
// ratio is taken as 0 where 1 - p_t = 0. gamma == 2 (the default) folds it to
// 2 (1-p_t) p q (1-2y): no pow, no division; gamma == 1 to p q (1-2y); gamma == 0 gives
// (1-p_t)^0 = 1. 1 + e lies in [1, 2], so 1 / (1 + e) may use fl_div's reciprocal estimate.
// alpha y + (1-alpha)(1-y) is taken as (1-alpha) + (2 alpha - 1) y. gamma == 2 and 1 never form
// (1-p_t)^gamma and the focus term apart: the gradient is factored as om ((p-y) om + 2 ce pq).
// Math type: float for 16/32-bit inputs, double for float64. gamma >= 1e18 is taken as 1e18 in
// float32 math (a float64 gamma beyond float32's range would be inf, and gamma * 0 NaN): (1-p_t)^gamma
// is 0 for every 1 - p_t < 1 in float32 either way.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct SigmoidFocalConsts {
  S gamma, alpha;
  S alpha_base, alpha_slope;  // alpha y + (1-alpha)(1-y) = alpha_base + alpha_slope y
  bool use_alpha;
  explicit FL_HD SigmoidFocalConsts(const sigmoid_focal_loss_params& p)
      : gamma(S(sizeof(S) == 4 && p.gamma > 1e18 ? 1e18 : p.gamma)),  // as focal_finite_gamma: finite
        alpha(S(p.alpha)),
        alpha_base(S(1.0 - p.alpha)),
        alpha_slope(S(2.0 * p.alpha - 1.0)),
        use_alpha(p.alpha >= 0.0) {}
};

// 1 where the target is outside [0, 1] (NaN targets are allowed: they propagate), else 0.
template <class V> FL_HD V sigmoid_focal_target_invalid(V y) {
  return select(y < V(0), V(1), select(y > V(1), V(1), V(0)));
}

template <class V, class S>
FL_HD LossGrad<V> sigmoid_focal_loss_and_grad(V x, V y, const SigmoidFocalConsts<S>& k) {
  V e = fl_exp_nonpos(-fl_abs(x));
  V inv = fl_div(V(1), V(1) + e);
  V e_inv = e * inv;
  auto pos = x >= V(0);
  V p = select(pos, inv, e_inv);
  V q = select(pos, e_inv, inv);
  V ce = (V(1) - y) * x - fl_min(x, V(0)) + fl_log1p_unit(e);
  V om = p * (V(1) - y) + q * y;
  V pq = p * q * (V(1) - V(2) * y);
  V a = k.use_alpha ? V(k.alpha_base) + V(k.alpha_slope) * y : V(1);
  LossGrad<V> r;
  if (k.gamma == S(2)) {  // mod = om^2, focus = 2 om pq: both carry a factor om
    V a_om = a * om;
    r.loss = ce * om * a_om;
    r.grad = a_om * ((p - y) * om + ce * (pq + pq));  // not (ce + ce): ce near the float max overflows
  } else if (k.gamma == S(1)) {  // mod = om, focus = pq
    r.loss = ce * om * a;
    r.grad = a * ((p - y) * om + ce * pq);
  } else if (k.gamma == S(0)) {  // mod = 1, focus = 0
    r.loss = ce * a;
    r.grad = (p - y) * a;
  } else {  // mod = (1-p_t)^gamma, focus = gamma (1-p_t)^gamma / (1-p_t) * p q (1-2y)
    V mod = fl_exp(V(k.gamma) * fl_log(om));
    V focus = select(om > V(0), V(k.gamma) * mod * pq / om, V(0));
    r.loss = ce * mod * a;
    r.grad = ((p - y) * mod + ce * focus) * a;
  }
  return r;
}

// Gradient and second derivative, M = (1-p_t)^gamma, om = 1-p_t, D = om'/om = p q (1-2y) / om:
//   l'' = a (p q M + 2 (p-y) M' + ce M''),  M' = gamma M D,  M'' = gamma M D ((gamma-1) D + 1 - 2p).
// M D = om^(gamma-1) p q (1-2y) is bounded (D -> -+1 where om -> 0), so D is taken as 0 where
// om = 0 (there M = 0 for gamma > 0). gamma == 2: M' = 2 om r, M'' = 2 r (r + om (1-2p)) with
// r = p q (1-2y); gamma == 1: M' = r, M'' = r (1-2p); gamma == 0: M' = M'' = 0. No division then.
template <class V, class S>
FL_HD GradHess<V> sigmoid_focal_grad_hess(V x, V y, const SigmoidFocalConsts<S>& k) {
  V e = fl_exp_nonpos(-fl_abs(x));
  V inv = fl_div(V(1), V(1) + e);
  V e_inv = e * inv;
  auto pos = x >= V(0);
  V p = select(pos, inv, e_inv);
  V q = select(pos, e_inv, inv);
  V ce = fl_max(x, V(0)) - x * y + fl_log1p_unit(e);
  V om = p * (V(1) - y) + q * y;
  V pq = p * q;
  V r = pq * (V(1) - V(2) * y);
  V one_2p = V(1) - V(2) * p;
  V mod, d_mod, dd_mod;
  if (k.gamma == S(2)) {
    mod = om * om;
    d_mod = V(2) * om * r;
    dd_mod = V(2) * r * (r + om * one_2p);
  } else if (k.gamma == S(1)) {
    mod = om;
    d_mod = r;
    dd_mod = r * one_2p;
  } else if (k.gamma == S(0)) {
    mod = V(1);
    d_mod = V(0);
    dd_mod = V(0);
  } else {
    mod = fl_exp(V(k.gamma) * fl_log(om));
    V D = select(om > V(0), r / om, V(0));
    d_mod = V(k.gamma) * mod * D;
    dd_mod = d_mod * (V(k.gamma - S(1)) * D + one_2p);
  }
  V a = k.use_alpha ? V(k.alpha_base) + V(k.alpha_slope) * y : V(1);
  V pmy = p - y;
  return {a * (pmy * mod + ce * d_mod), a * (pq * mod + V(2) * pmy * d_mod + ce * dd_mod)};
}

// The loss as the point-wise kernels call it (csrc/cpu/pointwise_kernel.h, csrc/cuda/pointwise.cu),
// named after its _spec.py entry: the generated case for the loss calls exactly this struct.
template <class S> struct sigmoid_focal_loss {
  static constexpr bool kChecksTarget = true;  // must match _spec.py's target domain
  // Compute-bound (exp, reciprocal, log1p per element): the CPU loop prefetches its inputs ahead.
  static constexpr bool kComputeBound = true;
  SigmoidFocalConsts<S> k;
  explicit FL_HD sigmoid_focal_loss(const sigmoid_focal_loss_params& p) : k(p) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const { return sigmoid_focal_loss_and_grad(x, y, k); }
  template <class V> static FL_HD V target_invalid(V y) { return sigmoid_focal_target_invalid(y); }
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const { return sigmoid_focal_grad_hess(x, y, k); }
};

FL_NAMESPACE_END
