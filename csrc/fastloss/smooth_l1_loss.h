// smooth_l1_loss (PyTorch's formula), elementwise, beta >= 0:
//   e = x - y;  l = 0.5 e^2 / beta if |e| < beta else |e| - 0.5 beta;  dl/dx = e / beta or sign(e)
// beta = 0 is L1 (|e| < 0 is never true, so the same formula gives |e| and sign(e)).
// sign(0) = 0 and NaN propagates.
#pragma once

#include "params.h"
#include "math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct SmoothL1Consts {
  S beta, half_beta;
  explicit FL_HD SmoothL1Consts(const LossParams& p) : beta(S(p.beta)), half_beta(S(0.5 * p.beta)) {}
};

template <class V, class S>
FL_HD LossGrad<V> smooth_l1_loss_and_grad(V x, V y, const SmoothL1Consts<S>& k) {
  V e = x - y;
  V ae = fl_abs(e);
  auto small = ae < V(k.beta);
  LossGrad<V> r;
  r.loss = select(small, V(0.5) * e * e / V(k.beta), ae - V(k.half_beta));
  r.grad = select(small, e / V(k.beta), fl_sign(e));
  return r;
}

FL_NAMESPACE_END
