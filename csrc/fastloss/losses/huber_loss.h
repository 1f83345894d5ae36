// huber_loss (PyTorch's formula), elementwise, delta > 0:
//   e = x - y;  l = 0.5 e^2 if |e| < delta else delta (|e| - 0.5 delta);  dl/dx = clamp(e, -delta, delta)
// The clamp lets a NaN e through (fl_min/fl_max return their second operand on NaN).
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct HuberConsts {
  S delta, half_delta;
  explicit FL_HD HuberConsts(const huber_loss_params& p) : delta(S(p.delta)), half_delta(S(0.5 * p.delta)) {}
};

template <class V, class S>
FL_HD LossGrad<V> huber_loss_and_grad(V x, V y, const HuberConsts<S>& k) {
  V e = x - y;
  V ae = fl_abs(e);
  LossGrad<V> r;
  r.loss = select(ae < V(k.delta), V(0.5) * e * e, V(k.delta) * (ae - V(k.half_delta)));
  r.grad = fl_min(V(k.delta), fl_max(V(-k.delta), e));
  return r;
}

// The loss as the point-wise kernels call it (csrc/cpu/pointwise_kernel.h, csrc/cuda/pointwise.cu),
// named after its _spec.py entry: the generated case for the loss calls exactly this struct.
template <class S> struct huber_loss {
  static constexpr bool kChecksTarget = false;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = false;
  HuberConsts<S> k;
  explicit FL_HD huber_loss(const huber_loss_params& p) : k(p) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const { return huber_loss_and_grad(x, y, k); }
  template <class V> static FL_HD V target_invalid(V) { return V(0); }
  // d2l/dx2 = 1 on the quadratic piece, 0 on the linear one and at |e| = delta; NaN e propagates.
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    const V e = x - y;
    return {huber_loss_and_grad(x, y, k).grad, select(e != e, e, select(fl_abs(e) < V(k.delta), V(1), V(0)))};
  }
};

FL_NAMESPACE_END
