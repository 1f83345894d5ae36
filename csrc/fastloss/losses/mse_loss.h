// mse_loss (F.mse_loss), elementwise: e = x - y;  l = e^2;  dl/dx = 2 e.
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

// The loss as the point-wise kernels call it (csrc/cpu/pointwise_kernel.h, csrc/cuda/pointwise.cu),
// named after its _spec.py entry: the generated case for the loss calls exactly this struct.
template <class S> struct mse_loss {
  static constexpr bool kChecksTarget = false;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = false;
  explicit FL_HD mse_loss(const mse_loss_params&) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const {
    LossGrad<V> r = unit_grad(x, y);
    r.grad = r.grad + r.grad;
    return r;
  }
  // The loss and the gradient divided by kGradFactor, for a kernel that folds the factor into its
  // gradient scale (csrc/cpu/pointwise_kernel.h): 2 e overflows for |e| > max / 2 where the scaled
  // gradient (2 e / n for "mean", or 2 e * grad_output) does not, and grad_output = 0 then gave NaN.
  static constexpr double kGradFactor = 2.0;
  template <class V> FL_HD LossGrad<V> unit_grad(V x, V y) const {
    V e = x - y;
    return LossGrad<V>{e * e, e};
  }
  template <class V> static FL_HD V target_invalid(V) { return V(0); }
  // d2l/dx2 = 2 (NaN e propagates).
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    V e = x - y;
    return {e + e, select(e != e, e, V(2))};
  }
};

FL_NAMESPACE_END
