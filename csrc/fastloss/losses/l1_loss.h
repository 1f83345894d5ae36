// l1_loss (F.l1_loss), elementwise: e = x - y;  l = |e|;  dl/dx = sign(e): 0 at e = 0 and NaN for
// a NaN e, as torch.sign in PyTorch's backward.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct l1_loss {
  static constexpr bool kChecksTarget = false;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = false;
  explicit FL_HD l1_loss(const l1_loss_params&) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const {
    V e = x - y;
    return LossGrad<V>{fl_abs(e), fl_sign(e)};
  }
  template <class V> static FL_HD V target_invalid(V) { return V(0); }
  // Piecewise linear: d2l/dx2 = 0, at the kink e = 0 too (NaN e propagates).
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    V e = x - y;
    return {fl_sign(e), select(e != e, e, V(0))};
  }
};

FL_NAMESPACE_END
