// softmax_kl_div: knowledge distillation between student logits x and teacher logits y, both
// divided by the temperature T (no T**2 factor):
//   s_c = x_c/T - ms, u_c = y_c/T - mt   (ms, mt: the row maxima of x/T and y/T)
//   es_c = exp(s_c), et_c = exp(u_c), Ss = sum es, St = sum et, A = sum_c et_c (u_c - s_c)
//   l = sum_c q_c (log q_c - log p_c) = A/St - log St + log Ss     (log q - log p = u - s + log Ss - log St)
//   dl/dx_c = (p_c - q_c)/T = es_c/(T Ss) - et_c/(T St)
// Every term stays finite for any finite logits and any T > 0 (exponents <= 0, Ss, St >= 1); a
// class the teacher gives probability 0 (et_c = 0, e.g. a -inf logit) adds 0 (0 log 0 = 0).
#pragma once

#include "../math_ops.h"

FL_NAMESPACE_BEGIN

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

// The gradient in the difference form: exactly 0 for identical logits (es = et, a = b) whatever
// the compiler fuses into FMAs, where es*a - et*b as an FMA would leave es*a's rounding error.
template <class V> FL_HD V softmax_kl_div_grad(V es, V et, V a, V a_minus_b) { return (es - et) * a + et * a_minus_b; }

FL_NAMESPACE_END
