// hinge_loss (binary), elementwise: y in {-1, +1} with 0 meaning -1 (NaN targets propagate):
//   h = margin - y s;  l = h (or h^2) if h > 0 else 0;  dl/ds = -y (or -2 y h) if h > 0 else 0.
// A hinge exactly at 0 has gradient 0, as PyTorch's backward of clamp_min. A NaN score or target
// gives a NaN loss (as PyTorch's clamp_min) and a NaN gradient and Hessian (NaN propagates).
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct BinaryHingeConsts {
  S margin;
  bool squared;
  explicit FL_HD BinaryHingeConsts(const hinge_loss_params& p) : margin(S(p.margin)), squared(p.squared) {}
};

// 1 where the target is not -1, 0 or +1 (NaN targets are allowed: they propagate), else 0.
template <class V> FL_HD V hinge_target_invalid(V y) {
  return select(fl_abs(y) == V(1), V(0), select(y == V(0), V(0), select(y != y, V(0), V(1))));
}

template <class V, class S>
FL_HD LossGrad<V> hinge_loss_and_grad(V s, V y, const BinaryHingeConsts<S>& k) {
  y = select(y == V(0), V(-1), y);
  V h = V(k.margin) - y * s;
  auto active = h > V(0);
  const V off = select(h != h, h, V(0));  // inactive: 0, or NaN for a NaN score or target (propagates)
  LossGrad<V> r;
  r.loss = select(active, k.squared ? h * h : h, off);
  r.grad = select(active, k.squared ? V(-2) * y * h : -y, off);
  return r;
}

// The loss as the point-wise kernels call it (csrc/cpu/pointwise_kernel.h, csrc/cuda/pointwise.cu),
// named after its _spec.py entry: the generated case for the loss calls exactly this struct.
template <class S> struct hinge_loss {
  static constexpr bool kChecksTarget = true;  // must match _spec.py's target domain
  static constexpr bool kComputeBound = false;
  BinaryHingeConsts<S> k;
  explicit FL_HD hinge_loss(const hinge_loss_params& p) : k(p) {}
  template <class V> FL_HD LossGrad<V> operator()(V x, V y) const { return hinge_loss_and_grad(x, y, k); }
  template <class V> static FL_HD V target_invalid(V y) { return hinge_target_invalid(y); }
  // d2l/ds2 = 2 y^2 on an active squared hinge, else 0 (linear piece, or the kink).
  template <class V> FL_HD GradHess<V> grad_hess(V x, V y) const {
    const V yy = select(y == V(0), V(-1), y);
    const auto active = V(k.margin) - yy * x > V(0);
    const LossGrad<V> r = hinge_loss_and_grad(x, y, k);
    return {r.grad, select(r.grad != r.grad, r.grad, k.squared ? select(active, V(2) * yy * yy, V(0)) : V(0))};
  }
};

FL_NAMESPACE_END
