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

// gamma in the math type, finite: a float64 gamma beyond float32's range (1e308) arrives as inf in
// float32 math, and gamma * (1-p_t)^gamma is then inf * 0 = NaN where the limit is 0. Any gamma
// >= 1e18 gives (1-p_t)^gamma = 0 in float32 wherever 1 - p_t < 1 (log(1 - p_t) <= -6e-8 there), so
// 1e18 stands for all of them. Float64 math is left alone (its gamma is always finite).
template <class S> FL_HD S focal_finite_gamma(S gamma) {
  return sizeof(S) == 4 && gamma > S(1e18) ? S(1e18) : gamma;
}

// (1 - p_t)^gamma = exp(gamma log(1 - p_t)), log(1 - p_t) from log p_t = u without rounding 1 - p_t:
// log1p(-p_t) for a small p_t (1 - 2.8e-8 rounds to 1 in float32, and 1^gamma = 1 where the true
// (1 - 2.8e-8)^1e18 is 0), log(-expm1(u)) near p_t = 1.
template <class S> FL_HD S focal_modulator(S u, S om, S gamma) {
  if (gamma == S(0)) return S(1);
  const S log_om = u < S(-0.6931471805599453) ? fl_log1p(-fl_exp(u)) : fl_log(om);
  return fl_exp(gamma * log_om);
}

template <class S>
FL_HD SoftmaxRowResult<S> softmax_focal_finalize(const SoftmaxRowStats<S>& st, S gamma, S scale) {
  gamma = focal_finite_gamma(gamma);
  S logp_t = st.zt_m - fl_log(st.s);
  S p_t = fl_exp(logp_t);
  S one_minus = -fl_expm1(logp_t);
  S mod = focal_modulator(logp_t, one_minus, gamma);
  S ratio = one_minus > S(0) ? p_t * logp_t / one_minus : S(-1);
  S k = st.w_t * (gamma * mod * ratio - mod);
  SoftmaxRowResult<S> r;
  r.loss = -st.w_t * mod * logp_t;
  r.a = -scale * k / st.s;
  r.b = S(0);
  r.t_coef = -scale * k;
  return r;
}

// Diagonal Hessian in z (softmax_row.h's SoftmaxRowHess). With u = log p_t, om = 1 - p_t,
// l = f(u), du/dz_c = [c==t] - p_c:
//   d2l/dz_c^2 = f''(u) ([c==t] - p_c)^2 - f'(u) p_c (1 - p_c),   f'(u) = k above,
//   f''(u) = alpha_t gamma p_t om^(gamma-2) (u (1 - gamma p_t) + 2 om).
// f'' is unbounded as p_t -> 1 for gamma < 1, but ([c==t] - p_c)^2 <= om^2: the product is
// G r_c^2 with G = f'' om^2 = alpha_t gamma p_t om^gamma (u (1 - gamma p_t) + 2 om) (finite, -> 0)
// and r_c = p_c / om <= 1 (c != t), r_t = 1. Where om = 0 (p_t rounds to 1) r_c is taken as 0,
// the limit of G r_c^2 there. So h_c = e (-k/s + e k/s^2) + G (e / (s om))^2, h_t = G - k p_t om.
template <class S> FL_HD SoftmaxRowHess<S> softmax_focal_hess(const SoftmaxRowStats<S>& st, S gamma, S scale) {
  gamma = focal_finite_gamma(gamma);
  const S u = st.zt_m - fl_log(st.s);
  const S p_t = fl_exp(u);
  const S om = -fl_expm1(u);
  const S mod = focal_modulator(u, om, gamma);
  const S ratio = om > S(0) ? p_t * u / om : S(-1);
  const S k = st.w_t * (gamma * mod * ratio - mod);
  const S G = st.w_t * gamma * p_t * mod * (u * (S(1) - gamma * p_t) + S(2) * om);
  const S inv_s = S(1) / st.s;
  const S ir = S(1) / (st.s * om);
  SoftmaxRowHess<S> h;
  h.ha = -scale * k * inv_s;
  h.hb = scale * k * inv_s * inv_s;
  h.hg = scale * G;
  h.ir = om > S(0) && ir < S(INFINITY) ? ir : S(0);
  h.ht = scale * (G - k * p_t * om);
  h.t_special = true;
  return h;
}

FL_NAMESPACE_END
