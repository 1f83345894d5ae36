// multiclass_hinge_loss (both variants) on one row or one tile; formulas in
// csrc/fastloss/losses/multiclass_hinge_loss.h. Every input value a row needs is read before its
// gradient is written, so the gradient may overwrite the input in place.
// Rows: the classes j != t are walked as the two ranges [0, t) and (t, C), so the target is
// excluded exactly. Tiles: lanes have different targets; weston_watkins sums over all classes and
// removes the target's term (exactly margin's term, since s_t - s_t = 0), crammer_singer keeps the
// two largest scores per lane (the max over j != t is the second one when s_t is the largest).
#pragma once

#include "../fastloss/losses/multiclass_hinge_loss.h"
#include "row_context.h"
#include "row_loop.h"

FL_NAMESPACE_BEGIN

// First j != t in [0, C) with x[j * stride] NaN, or -1 (the rare path: a row whose running
// sum of s - s was NaN, from a NaN or an infinite score).
template <class S, class T> inline int64_t first_nan_of(const T* x, int64_t C, int64_t stride, int64_t t) {
  for (int64_t j = 0; j < C; ++j) {
    const S v = load_scalar<S>(x + j * stride);
    if (j != t && v != v) return j;
  }
  return -1;
}

// max over j != t of x[j * stride] (-inf for none), for a row with no NaN but possibly s_t.
template <class S, class T> inline S max_other_of(const T* x, int64_t C, int64_t stride, int64_t t) {
  S m = -S(__builtin_inf());
  for (int64_t j = 0; j < C; ++j)
    if (j != t) m = fl_max(m, load_scalar<S>(x + j * stride));
  return m;
}

// First j != t in [0, C) with x[j * stride] == value, or -1.
template <class S, class T>
inline int64_t first_index_of(const T* x, int64_t C, int64_t stride, int64_t t, S value) {
  for (int64_t j = 0; j < C; ++j)
    if (j != t && load_scalar<S>(x + j * stride) == value) return j;
  return -1;
}

template <class V, class T>
inline typename V::scalar hinge_row(const RowContext<typename V::scalar>& k, const T* x, int64_t t, T* g, T* h,
                                    typename V::scalar scale) {
  using S = typename V::scalar;
  const int64_t C = k.classes;
  const S s_t = load_scalar<S>(x + t), w_t = k.weights[t];
  if (!k.weston_watkins) {
    // fl_max drops NaNs: s - s, NaN for a NaN (or infinite) score, is summed beside it to find them.
    Dual<V> mx(-__builtin_inf()), bad(0);
    auto body = [&](int64_t c, auto tag) {
      using W = decltype(tag);
      const W z = W::load(x + c);
      mx.get(tag) = fl_max(mx.get(tag), z);
      bad.get(tag) = bad.get(tag) + (z - z);
    };
    vector_loop<V>(0, t, body);
    vector_loop<V>(t + 1, C, body);
    S max_other = mx.max();
    const S b = bad.sum();
    int64_t j = b != b ? first_nan_of<S>(x, C, 1, t) : -1;
    if (j >= 0) max_other = load_scalar<S>(x + j);
    else j = first_index_of<S>(x, C, 1, t, max_other);
    const LossGrad<S> r = crammer_singer_finalize(s_t, max_other, w_t, k.hinge, scale);
    if (g) {
      const S zero = S(0) * scale;  // IEEE: 0 * inf and 0 * nan are nan, as the reference gives
      vector_loop<V>(0, C, [&](int64_t c, auto tag) { decltype(tag)(zero).store(g + c); });
      if (j >= 0) store_scalar(g + j, r.grad);
      store_scalar(g + t, -r.grad);
    }
    if (h) {
      const S hv = crammer_singer_hess(s_t, max_other, w_t, k.hinge, scale);
      const S zero = S(0) * scale;
      vector_loop<V>(0, C, [&](int64_t c, auto tag) { decltype(tag)(zero).store(h + c); });
      if (j >= 0) store_scalar(h + j, hv);
      store_scalar(h + t, hv);
    }
    return r.loss;
  }
  const S wscale = w_t * scale;
  Dual<V> lsum(0), dsum(0), hsum(0);
  auto body = [&](int64_t c, auto tag) {
    using W = decltype(tag);
    const W xc = W::load(x + c);
    const LossGrad<W> term = weston_watkins_term(xc, W(s_t), k.hinge);
    lsum.get(tag) = lsum.get(tag) + term.loss;
    dsum.get(tag) = dsum.get(tag) + term.grad;
    if (g) (term.grad * W(wscale)).store(g + c);
    if (h) {
      const W hv = weston_watkins_term_hess(xc, W(s_t), k.hinge);
      hsum.get(tag) = hsum.get(tag) + hv;
      (hv * W(wscale)).store(h + c);
    }
  };
  vector_loop<V>(0, t, body);
  vector_loop<V>(t + 1, C, body);
  if (g) store_scalar(g + t, -dsum.sum() * wscale);
  if (h) store_scalar(h + t, hsum.sum() * wscale);
  return w_t * lsum.sum();
}

template <class V, class T>
inline void hinge_tile(const RowContext<typename V::scalar>& k, const T* x, const int64_t* tgt, T* g, T* h,
                       const typename V::scalar* rs, typename V::scalar* loss) {
  using S = typename V::scalar;
  constexpr int NL = V::lanes;
  const int64_t C = k.classes, in = k.inner;
  S st[NL], keep[NL], wscale[NL], wt[NL], scale[NL];
  for (int j = 0; j < NL; ++j) {
    keep[j] = tgt[j] != k.ignore_index ? S(1) : S(0);
    st[j] = keep[j] != S(0) ? load_scalar<S>(x + tgt[j] * in + j) : S(0);
    wt[j] = keep[j] != S(0) ? k.weights[tgt[j]] : S(0);
    scale[j] = rs ? k.grad_scale * rs[j] : k.grad_scale;
    wscale[j] = wt[j] * scale[j];
    loss[j] = 0;
  }
  const V keepv = V::from_lanes(keep);
  if (!k.weston_watkins) {
    V m1(-__builtin_inf()), m2(-__builtin_inf()), bad(0);  // bad: NaN scores, as in hinge_row
    for (int64_t c = 0; c < C; ++c) {
      V z = V::load(x + c * in);
      m2 = fl_max(m2, fl_min(m1, z));
      m1 = fl_max(m1, z);
      bad = bad + (z - z);
    }
    S m1l[NL], m2l[NL], badl[NL], d[NL], hd[NL], zero[NL];
    int64_t jstar[NL];
    m1.lanes_to(m1l);
    m2.lanes_to(m2l);
    bad.lanes_to(badl);
    for (int j = 0; j < NL; ++j) {
      d[j] = hd[j] = 0;
      zero[j] = 0;
      jstar[j] = -1;
      if (keep[j] == S(0)) continue;
      zero[j] = S(0) * scale[j];
      S max_other = st[j] == m1l[j] ? m2l[j] : m1l[j];
      if (badl[j] != badl[j]) {  // a NaN or inf score: a NaN (even s_t's) has spoilt m1, m2
        jstar[j] = first_nan_of<S>(x + j, C, in, tgt[j]);
        max_other = jstar[j] >= 0 ? load_scalar<S>(x + jstar[j] * in + j) : max_other_of<S>(x + j, C, in, tgt[j]);
      }
      if (jstar[j] < 0) jstar[j] = first_index_of<S>(x + j, C, in, tgt[j], max_other);
      const LossGrad<S> r = crammer_singer_finalize(st[j], max_other, wt[j], k.hinge, scale[j]);
      loss[j] = r.loss;
      d[j] = r.grad;
      hd[j] = crammer_singer_hess(st[j], max_other, wt[j], k.hinge, scale[j]);
    }
    if (!g) return;
    const V zv = V::from_lanes(zero);
    for (int64_t c = 0; c < C; ++c) zv.store(g + c * in);
    if (h)
      for (int64_t c = 0; c < C; ++c) zv.store(h + c * in);
    for (int j = 0; j < NL; ++j) {
      if (keep[j] == S(0)) continue;
      if (jstar[j] >= 0) store_scalar(g + jstar[j] * in + j, d[j]);
      store_scalar(g + tgt[j] * in + j, -d[j]);
      if (h) {
        if (jstar[j] >= 0) store_scalar(h + jstar[j] * in + j, hd[j]);
        store_scalar(h + tgt[j] * in + j, hd[j]);
      }
    }
    return;
  }
  const V stv = V::from_lanes(st), wsv = V::from_lanes(wscale);
  V lsum(0), dsum(0), hsum(0);
  for (int64_t c = 0; c < C; ++c) {
    const V xc = V::load(x + c * in);
    const LossGrad<V> term = weston_watkins_term(xc, stv, k.hinge);
    lsum = lsum + term.loss;
    dsum = dsum + term.grad;
    if (g) select(keepv == V(0), V(0), term.grad * wsv).store(g + c * in);
    if (h) {
      const V hv = weston_watkins_term_hess(xc, stv, k.hinge);
      hsum = hsum + hv;
      select(keepv == V(0), V(0), hv * wsv).store(h + c * in);
    }
  }
  S ll[NL], dl[NL], hl[NL];
  lsum.lanes_to(ll);
  dsum.lanes_to(dl);
  hsum.lanes_to(hl);
  for (int j = 0; j < NL; ++j) {
    if (keep[j] == S(0)) continue;
    const LossGrad<S> own = weston_watkins_term(st[j], st[j], k.hinge);  // as summed, s_t nan or inf too
    loss[j] = wt[j] * (ll[j] - own.loss);
    if (g) store_scalar(g + tgt[j] * in + j, -(dl[j] - own.grad) * wscale[j]);
    if (h) {
      const S own_h = weston_watkins_term_hess(st[j], st[j], k.hinge);
      store_scalar(h + tgt[j] * in + j, (hl[j] - own_h) * wscale[j]);
    }
  }
}

FL_NAMESPACE_END
