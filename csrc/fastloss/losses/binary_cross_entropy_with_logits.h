// binary_cross_entropy_with_logits (F.binary_cross_entropy_with_logits), elementwise, y in [0, 1],
// per-element weight w and pos_weight pw (_spec broadcast vectors; 1 where not given):
//   sp(x) = softplus(x) = max(x, 0) + log1p(exp(-|x|)),  softplus(-x) = sp(x) - x
//   l = w ((1 - y) sp(x) + pw y sp(-x))     = -w (pw y log sigmoid(x) + (1-y) log(1 - sigmoid(x)))
//   dl/dx = w (sigmoid(x) (pw y + 1 - y) - pw y) = w ((1 - y) sigmoid(x) - pw y sigmoid(-x))
// Stability: exp(-|x|) <= 1 is the only exponential, so every term is finite for any finite x
// (x = +-3e38 in float32 gives a loss of |x| or 0, never inf or NaN); sigmoid comes from the same
// e without cancellation, and so does the gradient in its second form (the first cancels to
// rounding noise for a large logit: grad_output = inf then gave a NaN or an inf of either sign
// where the true gradient is tiny). 1 + e lies in [1, 2]: fl_div may use a reciprocal estimate.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct binary_cross_entropy_with_logits {
  static constexpr bool kChecksTarget = true;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = true;  // exp, reciprocal, log1p per element
  static constexpr int kVectors = 2;           // weight, pos_weight: must match _spec.py
  explicit FL_HD binary_cross_entropy_with_logits(const binary_cross_entropy_with_logits_params&) {}
  // v[0] = weight, v[1] = pos_weight of this element (or vector of elements).
  template <class V> FL_HD LossGrad<V> operator()(V x, V y, const V* v) const {
    V e = fl_exp_nonpos(-fl_abs(x));
    V inv = fl_div(V(1), V(1) + e);
    V p = select(x >= V(0), inv, e * inv);  // sigmoid(x)
    V q = select(x >= V(0), e * inv, inv);  // sigmoid(-x) = 1 - p
    V sp = fl_max(x, V(0)) + fl_log1p_unit(e);
    V pwy = v[1] * y;
    V ny = V(1) - y;
    LossGrad<V> r;
    r.loss = v[0] * (ny * sp + pwy * (sp - x));
    r.grad = v[0] * (ny * p - pwy * q);
    return r;
  }
  // 1 where the target is outside [0, 1] (NaN targets are allowed: they propagate), else 0.
  template <class V> static FL_HD V target_invalid(V y) {
    return select(y < V(0), V(1), select(y > V(1), V(1), V(0)));
  }
  // d2l/dx2 = w*(pw*y + 1 - y)*p*(1-p), with p(1-p) = e/(1+e)^2 (e = exp(-|x|)): no cancellation.
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y, const V* v) const {
    V e = fl_exp_nonpos(-fl_abs(x));
    V inv = fl_div(V(1), V(1) + e);
    V p = select(x >= V(0), inv, e * inv);
    V q = select(x >= V(0), e * inv, inv);
    V pwy = v[1] * y;
    V ny = V(1) - y;
    return {v[0] * (ny * p - pwy * q), v[0] * (pwy + ny) * (e * inv * inv)};
  }
};

FL_NAMESPACE_END
