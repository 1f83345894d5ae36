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

// |d|**P and its derivative h for P = 1 (square = false) or 2.
template <class V> FL_HD LossGrad<V> wasserstein_term(V d, bool square) {
  LossGrad<V> r;
  r.loss = square ? d * d : fl_abs(d);
  r.grad = square ? V(2) * d : fl_sign(d);
  return r;
}

FL_NAMESPACE_END
