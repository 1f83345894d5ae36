// softmax_kl_div: knowledge distillation between student logits x and teacher logits y, both
// divided by the temperature T (no T**2 factor):
//   s_c = x_c/T - ms, u_c = y_c/T - mt   (ms, mt: the row maxima of x/T and y/T)
//   es_c = exp(s_c), et_c = exp(u_c), Ss = sum es, St = sum et, A = sum_c et_c (u_c - s_c)
//   l = sum_c q_c (log q_c - log p_c) = A/St - log St + log Ss     (log q - log p = u - s + log Ss - log St)
//   dl/dx_c = (p_c - q_c)/T = es_c/(T Ss) - et_c/(T St)
// Every term stays finite for any finite logits and any T > 0 (exponents <= 0, Ss, St >= 1); a
// class the teacher gives probability 0 (et_c = 0, e.g. a -inf logit) adds 0 (0 log 0 = 0).
// For T < 1 the shift is taken as (x - max x) / T (softmax_kl_div_small_t_shift): x / T overflows
// for a large finite logit (3e38 / 0.5 in float32) where the difference does not, and a 1/T beyond
// the math type's range (T < 3e-39 in float32 math) is inf, where the maximum's own term is 0, not
// 0 * inf. The gradient's scale is then applied after the difference p - q (KlGradScale).
#pragma once

#include "../math_ops.h"

FL_NAMESPACE_BEGIN

// s = (x - m) / T for T < 1 (it = 1/T > 1, m the row maximum): exactly 0 at the maximum even for an
// infinite it; elsewhere x - m <= 0 may overflow to -inf only where the true s is below -max anyway.
template <class V> FL_HD V softmax_kl_div_small_t_shift(V x, V m, V it) {
  const V d = x - m;
  return select(d == V(0), V(0), d * it);
}

// The term of class c in A (0 where the teacher's probability is 0).
template <class V> FL_HD V softmax_kl_div_term(V et, V u, V s) { return select(et == V(0), V(0), et * (u - s)); }

// Row loss, and the gradient's coefficients: g_c = es_c a - et_c b = (es_c - et_c) a + et_c (a - b).
template <class S> struct KlDivRow {
  S loss, a, a_minus_b;
};

template <class S> FL_HD KlDivRow<S> softmax_kl_div_finalize(S A, S Ss, S St, S inv_t, S scale) {
  KlDivRow<S> r;
  r.loss = A / St - fl_log(St) + fl_log(Ss);
  r.a = scale * inv_t / Ss;
  r.a_minus_b = r.a - scale * inv_t / St;
  return r;
}

// How a row's gradient is scaled by scale / T: folded into finalize's coefficients when both are
// finite; otherwise finalize gets 1 for what is not finite and the gradient g is multiplied afterwards,
// g = (g == 0 ? 0 : g * keep_zero) * ieee. keep_zero carries an infinite 1/T (a p - q of exactly 0
// stays 0: the true 1/T is finite), ieee a non-finite scale (grad_output = inf: IEEE's
// grad_output * dl/dx, where inf * a - inf * b in the coefficients would be NaN for p != q).
template <class S> struct KlGradScale {
  S inv_t, scale, keep_zero, ieee;
};
template <class S> FL_HD KlGradScale<S> softmax_kl_div_grad_scale(S inv_t, S scale, bool fold) {
  if (fold) return {inv_t, scale, S(1), S(1)};
  const bool finite_scale = scale - scale == S(0);
  if (inv_t - inv_t == S(0)) return {inv_t, S(1), S(1), scale};
  return {S(1), S(1), finite_scale ? (scale == S(0) ? S(0) : scale * inv_t) : inv_t, finite_scale ? S(1) : scale};
}
template <class V> FL_HD V softmax_kl_div_rescale(V g, V keep_zero, V ieee) {
  return select(g == V(0), V(0), g * keep_zero) * ieee;
}

// The gradient in the difference form: exactly 0 for identical logits (es = et, a = b) whatever
// the compiler fuses into FMAs, where es*a - et*b as an FMA would leave es*a's rounding error.
template <class V> FL_HD V softmax_kl_div_grad(V es, V et, V a, V a_minus_b) { return (es - et) * a + et * a_minus_b; }

FL_NAMESPACE_END
