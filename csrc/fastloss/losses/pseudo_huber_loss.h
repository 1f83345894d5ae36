// pseudo_huber_loss (XGBoost's reg:pseudohubererror), elementwise, delta > 0:
//   e = x - y,  u = e / delta,  r = sqrt(1 + u^2)
//   l = delta^2 (r - 1),  dl/dx = e / r = delta u / r,  d2l/dx2 = 1 / r^3
// Stability: for |u| <= 1, r - 1 = u^2 / (r + 1) (no cancellation as e -> 0); for |u| > 1,
// r = |u| sqrt(1 + 1/u^2) (no overflow of u^2 up to the largest float) and dl/dx = delta sign(u) / s,
// s = r / |u|, so an infinite residual gives an infinite loss and the gradient +-delta. NaN propagates.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct pseudo_huber_loss {
  static constexpr bool kChecksTarget = false;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = true;   // a sqrt and three divisions per element: prefetch ahead
  S delta, delta2, inv_delta;
  explicit FL_HD pseudo_huber_loss(const pseudo_huber_loss_params& p)
      : delta(S(p.delta)), delta2(S(p.delta * p.delta)), inv_delta(S(1.0 / p.delta)) {}

  template <class V> struct Terms {
    V u, r, s;  // u = e / delta, r = sqrt(1 + u^2), s = sqrt(1 + 1/u^2) (used where |u| > 1)
  };
  template <class V> FL_HD Terms<V> terms(V x, V y) const {
    const V u = (x - y) * V(inv_delta), a = fl_abs(u), inv = V(1) / a;
    const V s = fl_sqrt(V(1) + inv * inv);
    return {u, select(a > V(1), a * s, fl_sqrt(V(1) + u * u)), s};
  }
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const {
    const Terms<V> t = terms(x, y);
    const auto big = fl_abs(t.u) > V(1);
    LossGrad<V> out;
    // delta (delta (r - 1)) and e^2 / (r + 1), not delta^2 times either: delta^2 overflows (delta = 1e30
    // in float32) where the loss does not, and u^2 underflows where e^2 does not
    const V e = x - y;
    out.loss = select(big, V(delta) * (V(delta) * (t.r - V(1))), e * e / (t.r + V(1)));
    out.grad = V(delta) * select(big, fl_sign(t.u) / t.s, t.u / t.r);
    return out;
  }
  template <class V> static FL_HD V target_invalid(V) { return V(0); }
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    const Terms<V> t = terms(x, y);
    return {(*this)(x, y).grad, V(1) / (t.r * t.r * t.r)};
  }
};

FL_NAMESPACE_END
