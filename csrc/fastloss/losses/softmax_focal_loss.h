// softmax_focal_loss: l = -alpha_t (1 - p_t)^gamma log p_t, on the softmax row statistics of
// softmax_row.h (no softcap, no weights: alpha_t comes in as st.w_t).
//
//   log p_t = (z_t - m) - log_s,  1 - p_t = -expm1(log p_t)  (no cancellation as p_t -> 1)
//   dl/dlog p_t = alpha_t (gamma (1-p_t)^gamma * p_t log p_t / (1-p_t) - (1-p_t)^gamma) =: k
//   dl/dz_c = k ([c==t] - p_c)
// p_t log p_t / (1-p_t) -> -1 as p_t -> 1, which keeps gamma < 1 finite; gamma = 0 gives
// (1-p_t)^0 = 1 even at p_t = 1. Gradient form of softmax_row.h with a = -k/s, b = 0, t_coef = -k.
#pragma once

#include "../params.h"
#include "../softmax_row.h"

FL_NAMESPACE_BEGIN

template <class S>
FL_HD SoftmaxRowResult<S> softmax_focal_finalize(const SoftmaxRowStats<S>& st, S gamma, S scale) {
  S logp_t = st.zt_m - fl_log(st.s);
  S p_t = fl_exp(logp_t);
  S one_minus = -fl_expm1(logp_t);
  S mod = gamma == S(0) ? S(1) : fl_pow(one_minus, gamma);
  S ratio = one_minus > S(0) ? p_t * logp_t / one_minus : S(-1);
  S k = st.w_t * (gamma * mod * ratio - mod);
  SoftmaxRowResult<S> r;
  r.loss = -st.w_t * mod * logp_t;
  r.a = -scale * k / st.s;
  r.b = S(0);
  r.t_coef = -scale * k;
  return r;
}

FL_NAMESPACE_END
