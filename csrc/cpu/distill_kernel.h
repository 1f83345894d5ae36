// softmax_kl_div (formulas in csrc/fastloss/losses/softmax_kl_div.h) on one row or one tile.
//
// Three sweeps over a row that stays in L1/L2, two exps per element:
//   1. the maxima of x and y (x/T's maximum is max(x)/T: multiplying by 1/T > 0 is monotonic)
//   2. es = exp(x/T - ms) to ebuf (the gradient buffer itself when it has the math type and is
//      not x: rowwise_loop gives scratch in place), et = exp(y/T - mt) to tbuf, their sums and
//      A = sum et (u - s)
//   3. g = es * a - et * b (in softmax_kl_div_grad's form), written once in the storage dtype.
//   A row whose loss cancelled (softmax_kl_div.h) first gets its centred loss from x, y, es, et.
// Tiles (class axis not last): V::lanes neighbouring rows at stride `inner`, vectorised across
// them, so no transposing copy is made. The target is always dense (teacher logits): no ignored rows.
#pragma once

#include "../fastloss/losses/softmax_kl_div.h"
#include "row_context.h"
#include "row_loop.h"

FL_NAMESPACE_BEGIN

// A's sum again, its terms scaled by softmax_kl_div_rescue_scale: the rare row whose A overflowed
// (logits near the dtype's maximum) although A / St does not.
template <class V, class T>
inline typename V::scalar distill_rescued_A(const T* x, const T* y, int64_t C, int64_t stride, typename V::scalar mxh,
                                            typename V::scalar myh, typename V::scalar it2) {
  using S = typename V::scalar;
  const S k = softmax_kl_div_rescue_scale<S>();
  S A = 0;
  for (int64_t c = 0; c < C; ++c) {
    const S xc = load_scalar<S>(x + c * stride);
    const S s = softmax_kl_div_shift(xc, mxh, it2);
    const S u = softmax_kl_div_shift(load_scalar<S>(y + c * stride), myh, it2);
    A += softmax_kl_div_term(fl_exp_nonpos(u), u * k, s * k, xc);
  }
  return A;
}

// The centred loss's two terms at one class (softmax_kl_div.h), W lanes: St q phi(e) added to phi,
// St q e to esum; es and et from the second sweep's buffers. x is intact: rowwise_loop never stores
// es over an in-place input for this loss.
template <class W, class T>
inline void distill_centred_at(const T* xp, const T* yp, const typename W::scalar* ebp, const typename W::scalar* tbp,
                               W mxh, W myh, W it2, W mean_d, W exp_mean_d, W& phi, W& esum) {
  const W xc = W::load(xp), yc = W::load(yp);
  const W es = W::load(ebp), et = W::load(tbp);
  const W e = softmax_kl_div_centred_d(xc, yc, mxh, myh, it2) - mean_d;
  phi = phi + softmax_kl_div_centred_term(es, et, e, exp_mean_d);
  esum = esum + select(et == W(0), W(0), et * e);
}

template <class V, class T>
inline typename V::scalar distill_centred_row(const T* x, const T* y, int64_t C, const typename V::scalar* ebuf,
                                              const typename V::scalar* tbuf, typename V::scalar mxh,
                                              typename V::scalar myh, typename V::scalar it2,
                                              const KlDivRow<typename V::scalar>& r, typename V::scalar St) {
  using S = typename V::scalar;
  Dual<V> phi(0), esum(0);
  vector_loop2<V>(0, C, [&](int64_t c, auto tag, int j) {
    using W = decltype(tag);
    distill_centred_at<W>(x + c, y + c, ebuf + c, tbuf + c, W(mxh), W(myh), W(it2), W(r.mean_d), W(r.exp_mean_d),
                          phi.get(tag, j), esum.get(tag, j));
  });
  return softmax_kl_div_centred_loss<S>(phi.sum(), esum.sum(), St);
}

template <class V, class T>
inline typename V::scalar distill_row(const RowContext<typename V::scalar>& k, const T* x, const T* y, T* g,
                                      typename V::scalar scale, typename V::scalar* ebuf,
                                      typename V::scalar* tbuf) {
  using S = typename V::scalar;
  const int64_t C = k.classes;
  const S it = k.inv_temperature, it2 = it + it;
  Dual<V> mx(-__builtin_inf()), my(-__builtin_inf());
  vector_loop2<V>(0, C, [&](int64_t c, auto tag, int j) {
    using W = decltype(tag);
    mx.get(tag, j) = fl_max(mx.get(tag, j), W::load(x + c));
    my.get(tag, j) = fl_max(my.get(tag, j), W::load(y + c));
  });
  const S mxh = softmax_safe_max(mx.max()) * S(0.5), myh = softmax_safe_max(my.max()) * S(0.5);
  Dual<V> ss(0), st(0), acc(0);
  vector_loop2<V>(0, C, [&](int64_t c, auto tag, int j) {
    using W = decltype(tag);
    const W xc = W::load(x + c);
    const W s = softmax_kl_div_shift(xc, W(mxh), W(it2));
    const W u = softmax_kl_div_shift(W::load(y + c), W(myh), W(it2));
    const W es = fl_exp_nonpos(s), et = fl_exp_nonpos(u);
    es.store(ebuf + c);  // also without a gradient: the centred rescue rereads them
    et.store(tbuf + c);
    ss.get(tag, j) = ss.get(tag, j) + es;
    st.get(tag, j) = st.get(tag, j) + et;
    acc.get(tag, j) = acc.get(tag, j) + softmax_kl_div_term(et, u, s, xc);
  });
  S A = acc.sum(), A_scale = 1;
  if (A - A != S(0) && A == A) {  // overflowed (or a genuine inf term, which the rescue keeps)
    A = distill_rescued_A<V>(x, y, C, 1, mxh, myh, it2);
    A_scale = softmax_kl_div_rescue_scale<S>();
  }
  const bool fold = scale - scale == S(0) && it - it == S(0);
  const KlGradScale<S> gs = softmax_kl_div_grad_scale(it, scale, fold);
  const S St = st.sum();
  KlDivRow<S> r = softmax_kl_div_finalize(A, ss.sum(), St, gs.inv_t, gs.scale, A_scale);
  if (r.centre) r.loss = distill_centred_row<V>(x, y, C, ebuf, tbuf, mxh, myh, it2, r, St);
  if (g) {
    vector_loop<V>(0, C, [&](int64_t c, auto tag) {
      using W = decltype(tag);
      W val = softmax_kl_div_grad(W::load(ebuf + c), W::load(tbuf + c), W(r.a), W(r.a_minus_b));
      if (!fold) val = softmax_kl_div_rescale(val, W(gs.keep_zero), W(gs.ieee));
      val.store(g + c);
    });
  }
  return r.loss;
}

// V::lanes rows side by side: element (c, j) at x[c * inner + j]; scales rs[j]; losses to loss[j].
// es at ebuf[c * estride + j], et at tbuf[c * lanes + j].
template <class V, class T>
inline void distill_tile(const RowContext<typename V::scalar>& k, const T* x, const T* y, T* g,
                         const typename V::scalar* rs, typename V::scalar* loss, typename V::scalar* ebuf,
                         int64_t estride, typename V::scalar* tbuf) {
  using S = typename V::scalar;
  constexpr int NL = V::lanes;
  const int64_t C = k.classes, in = k.inner;
  const V it2(k.inv_temperature + k.inv_temperature);
  V mx(-__builtin_inf()), my(-__builtin_inf());
  for (int64_t c = 0; c < C; ++c) {
    mx = fl_max(mx, V::load(x + c * in));
    my = fl_max(my, V::load(y + c * in));
  }
  S ms[NL], mt[NL];
  mx.lanes_to(ms);
  my.lanes_to(mt);
  for (int j = 0; j < NL; ++j) {
    ms[j] = softmax_safe_max(ms[j]) * S(0.5);
    mt[j] = softmax_safe_max(mt[j]) * S(0.5);
  }
  const V msv = V::from_lanes(ms), mtv = V::from_lanes(mt);
  V ss(0), st(0), acc(0);
  for (int64_t c = 0; c < C; ++c) {
    const V xc = V::load(x + c * in);
    const V s = softmax_kl_div_shift(xc, msv, it2);
    const V u = softmax_kl_div_shift(V::load(y + c * in), mtv, it2);
    const V es = fl_exp_nonpos(s), et = fl_exp_nonpos(u);
    es.store(ebuf + c * estride);
    et.store(tbuf + c * NL);
    ss = ss + es;
    st = st + et;
    acc = acc + softmax_kl_div_term(et, u, s, xc);
  }
  S ssl[NL], stl[NL], accl[NL], AS[NL], A[NL], B[NL];
  ss.lanes_to(ssl);
  st.lanes_to(stl);
  acc.lanes_to(accl);
  for (int j = 0; j < NL; ++j) {
    AS[j] = 1;
    if (accl[j] - accl[j] != S(0) && accl[j] == accl[j]) {  // overflowed: as in distill_row
      accl[j] = distill_rescued_A<V>(x + j, y + j, C, in, ms[j], mt[j], k.inv_temperature + k.inv_temperature);
      AS[j] = softmax_kl_div_rescue_scale<S>();
    }
  }
  S SC[NL], KZ[NL], IE[NL], D[NL], ED[NL];
  bool CE[NL], centre = false;
  // every lane's scale and 1/T finite: folded into the coefficients, as in distill_row
  bool fold = k.inv_temperature - k.inv_temperature == S(0);
  for (int j = 0; j < NL; ++j) {
    SC[j] = rs ? k.grad_scale * rs[j] : k.grad_scale;
    fold = fold && SC[j] - SC[j] == S(0);
  }
  for (int j = 0; j < NL; ++j) {
    const KlGradScale<S> gs = softmax_kl_div_grad_scale(k.inv_temperature, SC[j], fold);
    const KlDivRow<S> r = softmax_kl_div_finalize(accl[j], ssl[j], stl[j], gs.inv_t, gs.scale, AS[j]);
    loss[j] = r.loss;
    D[j] = r.mean_d;
    ED[j] = r.exp_mean_d;
    CE[j] = r.centre;
    centre = centre || r.centre;
    A[j] = r.a;
    B[j] = r.a_minus_b;
    KZ[j] = gs.keep_zero;
    IE[j] = gs.ieee;
  }
  if (centre) {  // some lane's loss cancelled: the centred sums for all lanes, kept where it did
    const V dv = V::from_lanes(D), edv = V::from_lanes(ED);
    V phi(0), esum(0);
    for (int64_t c = 0; c < C; ++c)
      distill_centred_at<V>(x + c * in, y + c * in, ebuf + c * estride, tbuf + c * NL, msv, mtv, it2, dv,
                            edv, phi, esum);
    S phil[NL], esl[NL];
    phi.lanes_to(phil);
    esum.lanes_to(esl);
    for (int j = 0; j < NL; ++j)
      if (CE[j]) loss[j] = softmax_kl_div_centred_loss<S>(phil[j], esl[j], stl[j]);
  }
  if (!g) return;
  const V av = V::from_lanes(A), bv = V::from_lanes(B), kzv = V::from_lanes(KZ), iev = V::from_lanes(IE);
  for (int64_t c = 0; c < C; ++c) {
    V val = softmax_kl_div_grad(V::load(ebuf + c * estride), V::load(tbuf + c * NL), av, bv);
    if (!fold) val = softmax_kl_div_rescale(val, kzv, iev);
    val.store(g + c * in);
  }
}

FL_NAMESPACE_END
