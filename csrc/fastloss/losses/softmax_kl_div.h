// softmax_kl_div: knowledge distillation between student logits x and teacher logits y, both
// divided by the temperature T (no T**2 factor):
//   s_c = (x_c - mx)/T, u_c = (y_c - my)/T   (mx, my: the row maxima of x and y)
//   es_c = exp(s_c), et_c = exp(u_c), Ss = sum es, St = sum et, A = sum_c et_c (u_c - s_c)
//   l = sum_c q_c (log q_c - log p_c) = A/St - log St + log Ss     (log q - log p = u - s + log Ss - log St)
//   dl/dx_c = (p_c - q_c)/T = es_c/(T Ss) - et_c/(T St)
// Every term stays finite for any finite logits and any T > 0 (exponents <= 0, Ss, St >= 1); a
// class the teacher gives probability 0 (et_c = 0, e.g. a -inf logit) adds 0 (0 log 0 = 0).
// The shift is taken as s = (x/2 - m/2) (2/T) (softmax_kl_div_shift): x / T overflows for a large
// finite logit and T < 1 (3e38 / 0.5 in float32), x - m for logits of both signs near the maximum,
// and x/T - m/T leaves the maximum's own s at +-1 rounding error of x/T once a compiler contracts it
// into an FMA (~1e291 for float64 logits of 1e307: exp(s) = inf). The halves are exact, s is 0 at the
// maximum, and an infinite 2/T (T below ~6e-39 in float32 math) leaves the maximum's s at 0, not
// 0 * inf. A near the maximum may overflow while A / St does not: the kernels then sum A again
// scaled by softmax_kl_div_rescue_scale. The gradient's scale is applied after the difference p - q
// where the scale or 1/T
// is not finite (KlGradScale).
#pragma once

#include "../math_ops.h"

FL_NAMESPACE_BEGIN

// s = (x - m) / T from x, m_half = m / 2 and it2 = 2 / T, m the row maximum (see above).
template <class V> FL_HD V softmax_kl_div_shift(V x, V m_half, V it2) {
  const V d = x * V(0.5) - m_half;
  return select(d == V(0), V(0), d * it2);
}

// A's terms scaled by this when A overflowed (its terms are at most 2 max each, St <= C of them).
template <class S> FL_HD S softmax_kl_div_rescue_scale() { return S(5.421010862427522e-20); }  // 2^-64

// The term of class c in A: 0 where the teacher's probability is 0, inf where the student's is
// exactly 0 (x = -inf) and the teacher's is positive (a finite u: its et may have underflowed in
// float32 math, but q_c > 0 makes the KL divergence infinite, as the float64 reference says).
template <class V> FL_HD V softmax_kl_div_term(V et, V u, V s, V x) {
  const V inf(INFINITY);
  return select(et == V(0), select(x == -inf, select(u > -inf, inf, V(0)), V(0)), et * (u - s));
}

// Row loss, and the gradient's coefficients: g_c = es_c a - et_c b = (es_c - et_c) a + et_c (a - b).
template <class S> struct KlDivRow {
  S loss, a, a_minus_b;
};

// A_scale: A was summed multiplied by it (1, or softmax_kl_div_rescue_scale after an overflow).
template <class S> FL_HD KlDivRow<S> softmax_kl_div_finalize(S A, S Ss, S St, S inv_t, S scale, S A_scale = S(1)) {
  KlDivRow<S> r;
  r.loss = (A / St) / A_scale - fl_log(St) + fl_log(Ss);
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
