// smooth_l1_loss (PyTorch's formula), elementwise, beta >= 0:
//   e = x - y;  l = 0.5 e^2 / beta if |e| < beta else |e| - 0.5 beta;  dl/dx = e / beta or sign(e)
// beta = 0 is L1 (|e| < 0 is never true, so the same formula gives |e| and sign(e)).
// sign(0) = 0 and NaN propagates.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct SmoothL1Consts {
  S beta, half_beta;
  explicit FL_HD SmoothL1Consts(const smooth_l1_loss_params& p) : beta(S(p.beta)), half_beta(S(0.5 * p.beta)) {}
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

// The loss as the point-wise kernels call it (csrc/cpu/pointwise_kernel.h, csrc/cuda/pointwise.cu),
// named after its _spec.py entry: the generated case for the loss calls exactly this struct.
template <class S> struct smooth_l1_loss {
  static constexpr bool kChecksTarget = false;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = false;
  SmoothL1Consts<S> k;
  explicit FL_HD smooth_l1_loss(const smooth_l1_loss_params& p) : k(p) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const { return smooth_l1_loss_and_grad(x, y, k); }
  template <class V> static FL_HD V target_invalid(V) { return V(0); }
  // d2l/dx2 = 1/beta on the quadratic piece, 0 on the linear one (all of it for beta = 0); NaN e propagates.
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    const V e = x - y;
    const V inv_beta = V(k.beta > scalar_t<V>(0) ? scalar_t<V>(1) / k.beta : scalar_t<V>(0));
    return {smooth_l1_loss_and_grad(x, y, k).grad, select(e != e, e, select(fl_abs(e) < V(k.beta), inv_beta, V(0)))};
  }
};

FL_NAMESPACE_END
