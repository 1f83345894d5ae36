// sigmoid_focal_loss (torchvision formula), elementwise, target y in [0, 1]:
//   p = sigmoid(x), q = 1 - p,  ce = max(x, 0) - x y + log1p(exp(-|x|))
//   1 - p_t = p (1 - y) + q y,  l = ce (1 - p_t)^gamma [* (alpha y + (1-alpha)(1-y)) if alpha >= 0]
//   dl/dx = (p - y)(1-p_t)^gamma + ce gamma (1-p_t)^gamma * p q (1 - 2y) / (1 - p_t)
// Stability: one exp(-|x|) <= 1 gives p and q without cancellation for large |x|; the last
// ratio is taken as 0 where 1 - p_t = 0. gamma == 2 (the default) folds it to
// 2 (1-p_t) p q (1-2y): no pow, no division; gamma == 1 to p q (1-2y); gamma == 0 gives
// (1-p_t)^0 = 1. 1 + e lies in [1, 2], so 1 / (1 + e) may use fl_div's reciprocal estimate.
// Math type: float for 16/32-bit inputs, double for float64.
#pragma once

#include "params.h"
#include "math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct SigmoidFocalConsts {
  S gamma, alpha;
  bool use_alpha;
  explicit FL_HD SigmoidFocalConsts(const LossParams& p)
      : gamma(S(p.gamma)), alpha(S(p.alpha)), use_alpha(p.alpha >= 0.0) {}
};

// 1 where the target is outside [0, 1] (NaN targets are allowed: they propagate), else 0.
template <class V> FL_HD V sigmoid_focal_target_invalid(V y) {
  return select(y < V(0), V(1), select(y > V(1), V(1), V(0)));
}

template <class V, class S>
FL_HD LossGrad<V> sigmoid_focal_loss_and_grad(V x, V y, const SigmoidFocalConsts<S>& k) {
  V e = fl_exp(-fl_abs(x));
  V inv = fl_div(V(1), V(1) + e);
  auto pos = x >= V(0);
  V p = select(pos, V(1), e) * inv;
  V q = select(pos, e, V(1)) * inv;
  V ce = fl_max(x, V(0)) - x * y + fl_log1p_unit(e);
  V om = p * (V(1) - y) + q * y;
  V pq = p * q * (V(1) - V(2) * y);
  V mod, focus;  // (1-p_t)^gamma and gamma (1-p_t)^gamma / (1-p_t) * p q (1-2y)
  if (k.gamma == S(2)) {
    mod = om * om;
    focus = V(2) * om * pq;
  } else if (k.gamma == S(1)) {
    mod = om;
    focus = pq;
  } else if (k.gamma == S(0)) {
    mod = V(1);
    focus = V(0);
  } else {
    mod = fl_exp(V(k.gamma) * fl_log(om));
    focus = select(om > V(0), V(k.gamma) * mod * pq / om, V(0));
  }
  LossGrad<V> r;
  r.loss = ce * mod;
  r.grad = (p - y) * mod + ce * focus;
  if (k.use_alpha) {
    V a = V(k.alpha) * y + V(S(1) - k.alpha) * (V(1) - y);
    r.loss = r.loss * a;
    r.grad = r.grad * a;
  }
  return r;
}

FL_NAMESPACE_END
