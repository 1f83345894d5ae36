// wasserstein_loss: 1-D earth mover's distance between p = softmax(x) and a target distribution
// over ordered classes:
//   F_c = sum_{k<=c} p_k, G_c = sum_{k<=c} y_k (one-hot target t: G_c = [c >= t]), d_c = F_c - G_c
//   l = sum_c |d_c|**P                      (P = 1 or 2)
//   h_c = dl/dF_c = sign(d_c) (P = 1; 0 at d_c = 0, as torch's abs backward) or 2 d_c
//   dl/dp_k = H_k = sum_{c>=k} h_c = Htot - Hpre_k   (Hpre_k = sum_{c<k} h_c)
//   dl/dx_j = p_j (H_j - sum_k p_k H_k), and sum_k p_k H_k = sum_c h_c F_c = B
// so one forward scan over the classes yields l, Htot, B and the prefix Hpre_k, and the gradient
// is p_j (Htot - B - Hpre_j): no reverse pass.
#pragma once

#include "../math_ops.h"

FL_NAMESPACE_BEGIN

// p_k's numerator exp(x - m) (m the row maximum), with the rounding error err of x - m folded in as
// exp(r) (1 + err), r + err = x - m exactly (TwoSum): a float32 x - m rounds by eps |x - m|, which
// exp carries into p_k as relative error, and the gradient's B = sum_k p_k H_k (of order C) sums
// every p_k's error into each entry p_j (H_j - B). A non-finite err (x or m infinite) folds in 0.
// e (1 + err), not e + e err: no product-sum a compiler could contract into an FMA at one call site
// and not another (the CUDA kernel recomputes e in each sweep and needs the same value each time).
template <class V> FL_HD V wasserstein_exp_shifted(V x, V m) {
  const V r = x - m, bv = r - x;
  const V err = (x - (r - bv)) - (m + bv);
  return fl_exp_nonpos(r) * (V(1) + select(err - err == V(0), err, V(0)));
}

// |d|**P and its derivative h for P = 1 (square = false) or 2.
template <class V> FL_HD LossGrad<V> wasserstein_term(V d, bool square) {
  LossGrad<V> r;
  r.loss = square ? d * d : fl_abs(d);
  r.grad = square ? V(2) * d : fl_sign(d);
  return r;
}

FL_NAMESPACE_END
