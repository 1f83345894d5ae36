// cross_entropy: fused softmax cross-entropy (hard or soft targets), weights, label smoothing,
// z-loss, softcap. Row statistics and the gradient form are those of softmax_row.h.
//
// Hard target t, eps = label_smoothing, w = class weights (1 if none), zl = z_loss:
//   l = (1-eps) w_t (lse - z_t) + (eps/C) sum_c w_c (lse - z_c) + zl lse^2
//     = (1-eps) w_t (log_s - (z_t - m)) + (eps/C) (sum_w log_s - sum_c w_c (z_c - m)) + zl lse^2
//   dl/dz_c = p_c ((1-eps) w_t + (eps/C) sum_w + 2 zl lse) - (eps/C) w_c - [c==t] (1-eps) w_t
// Soft target y (q = (1-eps) y + eps/C):
//   l = sum_c w_c q_c (lse - z_c) + zl lse^2 = sum_wq log_s - sum_c w_c q_c (z_c - m) + zl lse^2
//   dl/dz_c = p_c (sum_wq + 2 zl lse) - w_c q_c
// With softcap, dl/dx_c = dl/dz_c * (1 - tanh^2(x_c/cap)).
// Stability: every loss term is a sum of non-negative parts (log_s >= 0, z - m <= 0), so adding
// a constant to all logits changes nothing; p_c = e_c / s with e_c = exp(z_c - m) <= 1.
// Ignored rows (hard target == ignore_index) never reach this code: the kernel writes 0.
#pragma once

#include "../params.h"
#include "../softmax_row.h"

FL_NAMESPACE_BEGIN

template <class S> struct CrossEntropyConsts {
  S eps, eps_over_c, one_minus_eps, z_loss;
  FL_HD CrossEntropyConsts(const cross_entropy_params& p, long long num_classes)
      : eps(S(p.label_smoothing)),
        eps_over_c(S(p.label_smoothing / double(num_classes))),
        one_minus_eps(S(1.0 - p.label_smoothing)),
        z_loss(S(p.z_loss)) {}
};

// Soft-target smoothing of one probability: q = (1-eps) y + eps/C.
template <class V, class S> FL_HD V cross_entropy_soft_q(V y, const CrossEntropyConsts<S>& k) {
  return V(k.one_minus_eps) * y + V(k.eps_over_c);
}

// S is the math type or (CPU tiles of small rows) a vector of it, one row per lane; C the math type.
template <class S, class C>
FL_HD SoftmaxRowResult<S> cross_entropy_finalize_hard(const SoftmaxRowStats<S>& st,
                                                      const CrossEntropyConsts<C>& k, S scale) {
  S log_s = fl_log(st.s), lse = st.m + log_s;
  SoftmaxRowResult<S> r;
  r.loss = S(k.one_minus_eps) * st.w_t * (log_s - st.zt_m) + S(k.z_loss) * lse * lse;
  if (k.eps != C(0)) r.loss = r.loss + S(k.eps_over_c) * (st.sum_w * log_s - st.sum_wzm);
  S coef = S(k.one_minus_eps) * st.w_t + S(k.eps_over_c) * st.sum_w + S(2) * S(k.z_loss) * lse;
  r.a = scale * coef / st.s;
  r.b = scale * S(k.eps_over_c);
  r.t_coef = scale * S(k.one_minus_eps) * st.w_t;
  return r;
}

template <class S, class C>
FL_HD SoftmaxRowResult<S> cross_entropy_finalize_soft(const SoftmaxRowStats<S>& st,
                                                      const CrossEntropyConsts<C>& k, S scale) {
  S log_s = fl_log(st.s), lse = st.m + log_s;
  SoftmaxRowResult<S> r;
  r.loss = st.sum_wq * log_s - st.sum_wq_zm + S(k.z_loss) * lse * lse;
  r.a = scale * (st.sum_wq + S(2) * S(k.z_loss) * lse) / st.s;
  r.b = scale;
  r.t_coef = S(0);
  return r;
}

// Diagonal Hessian in z (softmax_row.h's SoftmaxRowHess): dl/dz_c = A p_c - (terms constant in z)
// with A = r's coefficient (hard: (1-eps) w_t + (eps/C) sum_w + 2 zl lse; soft: sum_wq + 2 zl lse)
// and dA/dz_c = 2 zl p_c, so d2l/dz_c^2 = A p_c (1 - p_c) + 2 zl p_c^2 = e (A/s - e (A - 2 zl)/s^2):
// the same at the target class (no target term in the second derivative).
template <class S, class C>
FL_HD SoftmaxRowHess<S> cross_entropy_hess(const SoftmaxRowStats<S>& st, const CrossEntropyConsts<C>& k,
                                           bool soft, S scale) {
  const S lse = st.m + fl_log(st.s);
  const S A = soft ? st.sum_wq + S(2) * S(k.z_loss) * lse
                   : S(k.one_minus_eps) * st.w_t + S(k.eps_over_c) * st.sum_w + S(2) * S(k.z_loss) * lse;
  const S inv_s = S(1) / st.s;
  SoftmaxRowHess<S> h;
  h.ha = scale * A * inv_s;
  h.hb = -scale * (A - S(2) * S(k.z_loss)) * inv_s * inv_s;
  h.hg = S(0);
  h.ir = S(0);
  h.ht = S(0);
  h.t_special = false;
  return h;
}

FL_NAMESPACE_END
