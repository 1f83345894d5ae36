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
//
// Small losses (centred rescue): l = A/St - log St + log Ss subtracts terms of order log C to leave
// l, so its rounding error is ~eps (|A/St| + log St + log Ss + 1) absolute: 100 % at T = 100 in float32
// math, where l ~ 1e-6. With d_c = u_c - s_c, D = A/St = sum q_c d_c and e_c = d_c - D (so sum q e = 0):
//   l = log sum_c q_c exp(-e_c) = log1p(Phi),   Phi = sum_c q_c phi(e_c),   phi(e) = exp(-e) - 1 + e >= 0
// a sum of non-negative terms with no cancellation. phi is a series for |e| < 1, and et_c phi(e_c) =
// es_c exp(D) - et_c (1 - e_c) beyond (et exp(-e) = es exp(D) exactly), so no exp is taken. d_c is
// taken from the logits' differences, d = ((y/2 - x/2) - (my/2 - mx/2)) 2/T with both differences'
// rounding errors kept (TwoSum): u - s would carry eps |s| of each. D, from A, is off by some delta
// = -sum q e; l = log(1 + Phi + delta) - delta exactly, evaluated as log1p(Phi) + (log1p(w) - w) - w Phi,
// w = delta / (1 + Phi), without cancellation. A row is recomputed so (a fourth sweep, the
// exponentials reused when the gradient's sweep stored them) when its l falls below
// softmax_kl_div_rescue_ratio of those terms (and 1); its error is then a few ulp of l.
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
// centre: the loss cancelled (see above); it is then log1p(sum_c centred term / St), with D = mean_d.
template <class S> struct KlDivRow {
  S loss, a, a_minus_b, mean_d, exp_mean_d;
  bool centre;
};

// The loss is recomputed centred below this fraction of |A/St| + log St + log Ss + 1: the plain form's
// error is a few eps of that sum (the 1: St and Ss near 1 round by eps, so log St does by eps too).
template <class S> FL_HD S softmax_kl_div_rescue_ratio() { return S(0.0625); }

// |e| < 1: phi(e) / e**2 = sum_k (-e)**k / (k + 2)!, N terms (float: 9, double: 17, each below half
// an ulp of the sum at |e| = 1).
template <int N, class V> FL_HD V softmax_kl_div_phi_over_e2(V e) {
  constexpr double inv_fact[17] = {1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
                                   1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600,
                                   1.0 / 6227020800, 1.0 / 87178291200, 1.0 / 1307674368000,
                                   1.0 / 20922789888000, 1.0 / 355687428096000, 1.0 / 6402373705728000};
  static_assert(N <= 17, "the series has 17 terms");
  const V minus_e = V(0) - e;
  V r = V(inv_fact[N - 1]);
  for (int k = N - 2; k >= 0; --k) r = r * minus_e + V(inv_fact[k]);
  return r;
}
template <class S> struct KlPhiTerms { static constexpr int value = sizeof(S) == 4 ? 9 : 17; };

// St q_c phi(e_c) of the centred loss, e = d - D, expD = exp(D): es exp(D) for a class of teacher
// probability 0 (et e -> 0 also for e = -inf).
template <class V> FL_HD V softmax_kl_div_centred_term(V es, V et, V e, V exp_d) {
  const V series = et * (e * e) * softmax_kl_div_phi_over_e2<KlPhiTerms<scalar_t<V>>::value>(e);
  const V direct = es * exp_d - et * (V(1) - e);
  return select(et == V(0), es * exp_d, select(fl_abs(e) < V(1), series, direct));
}

// a - b and its rounding error (TwoSum: exact for any finite a, b without FP contraction of sums).
template <class V> FL_HD V softmax_kl_div_two_diff(V a, V b, V& err) {
  const V d = a - b, bb = a - d;
  err = (a - (d + bb)) + (bb - b);
  return d;
}

// d = u - s from the logits themselves (see above): x, y, their rows' halved maxima, it2 = 2/T.
template <class V> FL_HD V softmax_kl_div_centred_d(V x, V y, V mx_half, V my_half, V it2) {
  V e1, e2;
  const V a = softmax_kl_div_two_diff(y * V(0.5), x * V(0.5), e1), b = softmax_kl_div_two_diff(my_half, mx_half, e2);
  const V dd = (a - b) + (e1 - e2);
  return select(dd == V(0), V(0), dd * it2);
}

// The loss from sum_c St q_c phi(e_c) and sum_c St q_c e_c (= -St delta), see above.
template <class S> FL_HD S softmax_kl_div_centred_loss(S phi_sum, S e_sum, S St) {
  const S Phi = phi_sum / St, w = -(e_sum / St) / (S(1) + Phi);
  const S log1p_w_minus_w = fl_abs(w) < S(0.0009765625) ? w * w * (w * (S(1) / S(3) - w * S(0.25)) - S(0.5))
                                                         : fl_log1p(w) - w;
  return fl_log1p(Phi) + log1p_w_minus_w - w * Phi;
}

// A_scale: A was summed multiplied by it (1, or softmax_kl_div_rescue_scale after an overflow).
template <class S> FL_HD KlDivRow<S> softmax_kl_div_finalize(S A, S Ss, S St, S inv_t, S scale, S A_scale = S(1)) {
  KlDivRow<S> r;
  const S D = (A / St) / A_scale, log_st = fl_log(St), log_ss = fl_log(Ss);
  r.loss = D - log_st + log_ss;
  r.mean_d = D;
  // |D| <= 64: a genuinely small loss has |D| <= loss + log C (log Ss, log St lie in [0, log C]), so
  // exp(D) is finite and a row that is not small is never recentred
  r.centre = A_scale == S(1) && fl_abs(D) <= S(64) &&
             r.loss < softmax_kl_div_rescue_ratio<S>() * (fl_abs(D) + log_st + log_ss + S(1));
  r.exp_mean_d = r.centre ? fl_exp(D) : S(1);
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
