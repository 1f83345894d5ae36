// wasserstein_loss (formulas in csrc/fastloss/losses/wasserstein_loss.h) on one row or one tile.
//
// Four sweeps over a row that stays in L1/L2, one exp per element:
//   1. the row max m
//   2. e = exp(x - m) to ebuf (the gradient buffer itself when it has the math type, even in
//      place over x: x_c is read before g_c is written) and s = sum e
//   3. the scan over the ordered classes: F, G, d, the loss, B, and h to hbuf
//   4. the gradient p_c (H_c - B) * scale, written once in the storage dtype.
// Rows: 3 and 4 are sequential scalar loops in double (4 runs from the end of the row, summing H
// directly), which keeps cumulative sums over 1e5 classes exact to float precision; a scalar loop
// costs the same in double. Tiles (class
// axis not last, and blocks of short rows): V::lanes rows side by side, so the scan runs across
// whole vectors in the math type, saving Hpre to hbuf for a vectorised gradient p (Htot - B - Hpre).
// Ignored rows are handled by the caller (rows) or by a lane mask (tiles).
#pragma once

#include "../fastloss/losses/wasserstein_loss.h"
#include "row_context.h"
#include "row_loop.h"

FL_NAMESPACE_BEGIN

template <class V, class T>
inline typename V::scalar wasserstein_row(const RowContext<typename V::scalar>& k, const T* x, const T* y,
                                          int64_t t, T* g, typename V::scalar scale, typename V::scalar* ebuf,
                                          typename V::scalar* hbuf) {
  using S = typename V::scalar;
  const int64_t C = k.classes;
  Dual<V> mx(-__builtin_inf());
  vector_loop2<V>(0, C, [&](int64_t c, auto tag, int j) { mx.get(tag, j) = fl_max(mx.get(tag, j), decltype(tag)::load(x + c)); });
  const S m = softmax_safe_max(mx.max());
  vector_loop<V>(0, C, [&](int64_t c, auto tag) {
    using W = decltype(tag);
    wasserstein_exp_shifted(W::load(x + c), W(m)).store(ebuf + c);
  });
  // ebuf may be the caller's gradient (misaligned): its elements are read and written through
  // load_scalar / store_scalar. The normaliser in double too: 1 - F_c = (sum_{k>c} e_k)/s is what the gradient at a confident
  // class multiplies, and a float s would put its rounding (1e-7) into every one of those terms.
  double s4[4] = {0, 0, 0, 0};
  int64_t c4 = 0;
  for (; c4 + 4 <= C; c4 += 4)
    for (int j = 0; j < 4; ++j) s4[j] += load_scalar<double>(ebuf + c4 + j);
  for (; c4 < C; ++c4) s4[0] += load_scalar<double>(ebuf + c4);
  const double inv_s = 1.0 / ((s4[0] + s4[1]) + (s4[2] + s4[3]));
  double cum = 0, G = 0, loss = 0, B = 0;
  for (int64_t c = 0; c < C; ++c) {
    cum += load_scalar<double>(ebuf + c);
    const double F = cum * inv_s;
    G = y ? G + load_scalar<double>(y + c) : (c >= t ? 1.0 : 0.0);
    const LossGrad<double> term = wasserstein_term(F - G, k.square);
    loss += term.loss;
    // h as stored is the h of the gradient pass too: B = sum_c h_c F_c must use the very values
    // that H sums, or the sign of the last class's d = F - G (0 up to rounding) would not cancel.
    store_scalar(hbuf + c, S(term.grad));
    B += load_scalar<double>(hbuf + c) * F;
  }
  if (g) {
    // H_c - B from the end of the row, in double: H and B grow with C while their difference at
    // the predicted class is small, so a float prefix of h would cancel (2e-4 at C = 4097).
    const double a = inv_s * double(scale);
    double H = 0;
    for (int64_t c = C - 1; c >= 0; --c) {
      H += load_scalar<double>(hbuf + c);
      store_scalar(g + c, S(load_scalar<double>(ebuf + c) * a * (H - B)));
    }
  }
  return S(loss);
}

// V::lanes rows side by side: element (c, j) at x[c * inner + j]; targets tgt[j] (null: soft
// targets y), scales rs[j]; losses to loss[j]. e at ebuf[c * estride + j], Hpre at hbuf[c * lanes + j].
template <class V, class T>
inline void wasserstein_tile(const RowContext<typename V::scalar>& k, const T* x, const T* y, const int64_t* tgt,
                             T* g, const typename V::scalar* rs, typename V::scalar* loss,
                             typename V::scalar* ebuf, int64_t estride, typename V::scalar* hbuf) {
  using S = typename V::scalar;
  constexpr int NL = V::lanes;
  const int64_t C = k.classes, in = k.inner;
  V mx(-__builtin_inf());
  for (int64_t c = 0; c < C; ++c) mx = fl_max(mx, V::load(x + c * in));
  S m[NL], keep[NL], tf[NL];
  mx.lanes_to(m);
  for (int j = 0; j < NL; ++j) {
    m[j] = softmax_safe_max(m[j]);
    keep[j] = !tgt || tgt[j] != k.ignore_index ? S(1) : S(0);
    tf[j] = tgt && keep[j] != S(0) ? S(tgt[j]) : S(0);
  }
  const V mv = V::from_lanes(m), tv = V::from_lanes(tf);
  V s(0);
  for (int64_t c = 0; c < C; ++c) {
    const V e = wasserstein_exp_shifted(V::load(x + c * in), mv);
    e.store(ebuf + c * estride);
    s = s + e;
  }
  const V inv_s = V(1) / s;
  V cum(0), G(0), lsum(0), hpre(0), B(0);
  for (int64_t c = 0; c < C; ++c) {
    cum = cum + V::load(ebuf + c * estride);
    const V F = cum * inv_s;
    G = y ? G + V::load(y + c * in) : select(V(S(c)) >= tv, V(1), V(0));
    const LossGrad<V> term = wasserstein_term(F - G, k.square);
    lsum = lsum + term.loss;
    hpre.store(hbuf + c * NL);
    hpre = hpre + term.grad;
    B = B + term.grad * F;
  }
  S ll[NL], sc[NL];
  lsum.lanes_to(ll);
  for (int j = 0; j < NL; ++j) {
    loss[j] = keep[j] != S(0) ? ll[j] : S(0);
    sc[j] = keep[j] != S(0) ? (rs ? k.grad_scale * rs[j] : k.grad_scale) : S(0);
  }
  if (!g) return;
  const V a = inv_s * V::from_lanes(sc), hb = hpre - B, keepv = V::from_lanes(keep);
  for (int64_t c = 0; c < C; ++c) {
    const V val = V::load(ebuf + c * estride) * a * (hb - V::load(hbuf + c * NL));
    select(keepv == V(0), V(0), val).store(g + c * in);  // exact zeros for ignored rows, whatever x holds
  }
}

FL_NAMESPACE_END
