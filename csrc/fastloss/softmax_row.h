// Pieces shared by the softmax losses (cross_entropy, softmax_focal_loss).
//
// Every implementation walks a row of C logits x_c the same way:
//   z_c = softcap_z(x_c)                  (identity unless softcap > 0)
//   m   = max_c z_c, replaced by 0 when -inf (a row of only -inf then gives NaN through
//         0 * inf, as PyTorch); a +inf or NaN maximum stays, so the row is NaN (inf - inf),
//         as log_softmax gives
//   e_c = exp(z_c - m)                    (the only exp per element; kept in an fp32 buffer)
//   s   = sum_c e_c,  log_s = log(s),  lse = m + log_s
// then a per-loss scalar *finalize* turns the row statistics into the row loss and the
// coefficients of the gradient, and the per-element gradient is
//   g_c = (e_c * a - b * wq_c) * dz_dx_c  - [c == t] * t_coef * dz_dx_t
// where wq_c is w_c (hard targets), w_c * q_c (soft targets) or 0 (focal). Statistics that would
// cancel catastrophically as differences of large sums (sum_c w_c z_c vs lse * sum_c w_c) are
// taken relative to the row max: sum_c w_c (z_c - m), accumulated in the same pass as s.
// Dtypes: V is float for float32/float16/bfloat16 inputs, double for float64.
#pragma once

#include "math_ops.h"

FL_NAMESPACE_BEGIN

// Row statistics of the softmax family, in the row's math type S (float or double).
template <class S> struct SoftmaxRowStats {
  S m;          // max_c z_c (0 when -inf)
  S s;          // sum_c exp(z_c - m)
  S zt_m;       // z_t - m (hard targets)
  S w_t;        // weight of the target class (1 without weights)
  S sum_w;      // sum_c w_c (C without weights)
  S sum_wzm;    // sum_c w_c (z_c - m) (needed only with label smoothing)
  S sum_wq;     // soft targets: sum_c w_c q_c
  S sum_wq_zm;  // soft targets: sum_c w_c q_c (z_c - m)
};

// Row loss and gradient coefficients (already multiplied by the row's gradient scale).
template <class S> struct SoftmaxRowResult {
  S loss;
  S a;       // multiplies e_c
  S b;       // multiplies wq_c
  S t_coef;  // subtracted at the target class
};

// Diagonal of the row Hessian in z, for the *_grad_hess form (already times the row's scale):
//   h_c = e_c (ha + e_c hb) + hg (e_c ir)^2   (c != t; every c for soft targets)
//   h_t = t_special ? ht : the same formula at e_t
// With softcap, d2l/dx_c^2 = h_c (dz/dx)^2 + (dl/dz_c) d2z/dx^2, d2z/dx^2 = -2 th (1 - th^2) / cap.
template <class S> struct SoftmaxRowHess {
  S ha, hb, hg, ir, ht;
  bool t_special;
};

template <class V> FL_HD V softmax_hess_z(V e, V ha, V hb, V hg, V ir) {
  V er = e * ir;
  return e * (ha + e * hb) + hg * er * er;
}
// d2z/dx2 of the softcap from th = tanh(x/cap).
template <class V> FL_HD V softcap_d2z_dx2(V th, scalar_t<V> inv_cap) {
  return V(-2 * inv_cap) * th * (V(1) - th * th);
}

// Softcap: z = cap * tanh(x / cap), dz/dx = 1 - tanh^2. th is returned for dz/dx.
template <class V> FL_HD V softcap_z(V x, scalar_t<V> cap, scalar_t<V> inv_cap, V& th) {
  th = fl_tanh(x * V(inv_cap));
  return V(cap) * th;
}
template <class V> FL_HD V softcap_dz_dx(V th) { return V(1) - th * th; }

// The shared per-element gradient (see the file comment); dz_dx is 1 without softcap.
template <class V> FL_HD V softmax_grad(V e, V wq, V a, V b) { return e * a - b * wq; }

// The row max rule of the reference (_log_softmax_stats): only a -inf maximum is replaced.
template <class S> FL_HD S softmax_safe_max(S m) { return m == -S(INFINITY) ? S(0) : m; }

FL_NAMESPACE_END
