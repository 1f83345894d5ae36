// kl_div (F.kl_div), elementwise; the input holds log-probabilities:
//   l = xlogy(t, t) - t x  (0 log 0 = 0: a zero target gives t x = 0 for finite x);  dl/dx = -t
//   log_target: l = exp(t) (t - x);  dl/dx = -exp(t)
// Target domain: t >= 0 (NaN propagates) unless log_target; the check is per call, not per loss.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct kl_div {
  static constexpr bool kChecksTarget = true;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = true;  // a log (or exp) per element: prefetch ahead
  bool log_target;
  explicit FL_HD kl_div(const kl_div_params& p) : log_target(p.log_target) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const {
    LossGrad<V> r;
    if (log_target) {
      // t = x gives exactly 0, not inf * 0, where exp(t) overflows the math type but not float64
      // (t = 100 in float32): the loss is 0 there whatever exp(t) is
      V p = fl_exp(y);
      V d = y - x;
      r.loss = select(d == V(0), d, p * d);
      r.grad = -p;
    } else {
      // y*log(y) is taken only where y != 0 (log 0 = -inf times 0 would be NaN); NaN y stays NaN.
      V ylogy = select(y == V(0), V(0), y * fl_log(select(y == V(0), V(1), y)));
      r.loss = ylogy - y * x;
      r.grad = -y;
    }
    return r;
  }
  template <class V> FL_HD V target_invalid(V y) const {
    return log_target ? V(0) : select(y < V(0), V(1), V(0));
  }
  // Linear in the input: d2l/dx2 = 0 wherever the target is finite (not grad * 0, which is NaN where
  // exp(t) overflows float32 but the float64 gradient does not), NaN where it is NaN or +-inf.
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    const LossGrad<V> r = (*this)(x, y);
    return {r.grad, (y - y) * V(0)};
  }
};

FL_NAMESPACE_END
