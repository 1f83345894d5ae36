// The softmax family (cross_entropy with every option, softmax_focal_loss) on one row or one tile.
//
// Memory: three sweeps over a row that stays in L1/L2, one exp per element:
//   1. z = x (or softcap(x), tanh kept in thbuf), row max m
//   2. e = exp(z - m) written to ebuf (the gradient buffer itself when it has the math type, even
//      in place over x: every x needed later was read before), sum e and the soft/smoothing sums
//   3. g = (e * a - b * wq) * scale * dz_dx written once in the storage dtype; the target class's
//      value is recomputed in the math type and stored once (never a rounded value corrected).
//      The coefficients are the unscaled ones (finalize with scale 1); a finite scale is folded into
//      them, a non-finite one multiplies each element, as IEEE arithmetic and the reference give
//      grad_output * dl/dx (scaled coefficients turned e_t a - t_coef into inf - inf for inf).
// Rows (class axis last): vectorised along the row. Tiles (class axis in the middle): V::lanes
// neighbouring rows at stride `inner`, vectorised across them, so no transposing copy is made.
// Ignored rows are handled by the caller (row) or by a lane mask (tile).
#pragma once

#include "../fastloss/losses/cross_entropy.h"
#include "../fastloss/losses/softmax_focal_loss.h"
#include "row_context.h"
#include "row_loop.h"

#include <type_traits>

FL_NAMESPACE_BEGIN

enum SoftmaxMode { SOFTMAX_HARD = 0, SOFTMAX_HARD_SMOOTHED = 1, SOFTMAX_SOFT = 2 };

template <class S>
inline SoftmaxRowResult<S> softmax_finalize(const RowContext<S>& k, const SoftmaxRowStats<S>& st, S scale) {
  switch (static_cast<LossId>(k.loss_id)) {
    case LOSS_softmax_focal_loss: return softmax_focal_finalize(st, k.gamma, scale);
    case LOSS_cross_entropy:
      return k.soft ? cross_entropy_finalize_soft(st, k.ce, scale) : cross_entropy_finalize_hard(st, k.ce, scale);
#define FL_NOT_HERE(name) case LOSS_##name:
    FL_LOSSES_NOT_ROW_SOFTMAX(FL_NOT_HERE)
#undef FL_NOT_HERE
    break;
  }
  return {};  // not reached: rowwise_run sends only the softmax family here
}

// The *_grad_hess form: the row's Hessian coefficients (a new softmax-family loss adds its case).
template <class S>
inline SoftmaxRowHess<S> softmax_hess(const RowContext<S>& k, const SoftmaxRowStats<S>& st, S scale) {
  switch (static_cast<LossId>(k.loss_id)) {
    case LOSS_softmax_focal_loss: return softmax_focal_hess(st, k.gamma, scale);
    case LOSS_cross_entropy: return cross_entropy_hess(st, k.ce, k.soft, scale);
#define FL_NOT_HERE(name) case LOSS_##name:
    FL_LOSSES_NOT_ROW_SOFTMAX(FL_NOT_HERE)
#undef FL_NOT_HERE
    break;
  }
  return {};  // not reached
}

// S: the math type, or a vector of it with one row per lane (tiles).
template <class C, class S>
inline SoftmaxRowStats<S> softmax_stats(const RowContext<C>& k, S m, S s, S zt, S w_t, S a1, S a2) {
  SoftmaxRowStats<S> st;
  st.m = m;
  st.s = s;
  st.zt_m = zt - m;
  st.w_t = w_t;
  st.sum_w = S(k.sum_w);
  st.sum_wzm = a1;
  st.sum_wq = a1;
  st.sum_wq_zm = a2;
  return st;
}

// The *_grad_hess form of softmax_row's last sweep: g and h from e (in ebuf) in one pass.
template <class V, int MODE, bool CAP, class T>
inline void softmax_row_hess(const RowContext<typename V::scalar>& k, const SoftmaxRowStats<typename V::scalar>& st,
                             const SoftmaxRowResult<typename V::scalar>& r, const T* y, int64_t t,
                             typename V::scalar e_t, T* g, T* h, typename V::scalar scale,
                             const typename V::scalar* ebuf, const typename V::scalar* thbuf) {
  using S = typename V::scalar;
  const S* w = k.weights;
  const SoftmaxRowHess<S> hr = softmax_hess(k, st, scale);
  vector_loop<V>(0, k.classes, [&](int64_t c, auto tag) {
    using W = decltype(tag);
    const W e = W::load(ebuf + c);
    W val = e * W(r.a);
    if constexpr (MODE == SOFTMAX_HARD_SMOOTHED) val = val - W(r.b) * W::load(w + c);
    if constexpr (MODE == SOFTMAX_SOFT) val = val - W(r.b) * W::load(w + c) * cross_entropy_soft_q(W::load(y + c), k.ce);
    W hv = softmax_hess_z(e, W(hr.ha), W(hr.hb), W(hr.hg), W(hr.ir));
    if constexpr (CAP) {
      const W th = W::load(thbuf + c);
      const W dz = softcap_dz_dx(th);
      hv = hv * dz * dz + val * softcap_d2z_dx2(th, k.inv_cap);
      val = val * dz;
    }
    val.store(g + c);
    hv.store(h + c);
  });
  if constexpr (MODE != SOFTMAX_SOFT) {
    S gt = softmax_grad(e_t, st.w_t, r.a, MODE == SOFTMAX_HARD ? S(0) : r.b) - r.t_coef;
    S ht = hr.t_special ? hr.ht : softmax_hess_z(e_t, hr.ha, hr.hb, hr.hg, hr.ir);
    if constexpr (CAP) {
      const S th = thbuf[t], dz = softcap_dz_dx(th);
      ht = ht * dz * dz + gt * softcap_d2z_dx2(th, k.inv_cap);
      gt *= dz;
    }
    store_scalar(g + t, gt);
    store_scalar(h + t, ht);
  }
}

// The target class's unscaled gradient. cross_entropy's is formed as
//   t_coef (e_t - s) / s + rest e_t / s - b w_t,  rest = coef - t_coef = (eps/C) sum_w + 2 z_loss lse,
// since e_t a - t_coef cancels as p_t -> 1: for C = 1 (p_t = 1 exactly) it left the z-loss term
// 2 z_loss lse with the rounding error of the t_coef it had been added to (1.5% measured).
// Without z_loss both forms cancel alike (rest is then a fixed fraction of coef): the cheaper one.
template <int MODE, class S>
inline S softmax_target_grad(const RowContext<S>& k, const SoftmaxRowResult<S>& r, S e_t, S s, S m, S w_t) {
  if (k.loss_id != LOSS_cross_entropy || k.ce.z_loss == S(0))
    return softmax_grad(e_t, w_t, r.a, MODE == SOFTMAX_HARD ? S(0) : r.b) - r.t_coef;
  const S rest = k.ce.eps_over_c * k.sum_w + S(2) * k.ce.z_loss * (m + fl_log(s)), inv_s = S(1) / s;
  S gt = r.t_coef * ((e_t - s) * inv_s) + rest * (e_t * inv_s);
  if (MODE == SOFTMAX_HARD_SMOOTHED) gt -= r.b * w_t;
  return gt;
}

// Long rows (hard targets, no softcap, loss and gradient): the row max and the exponentials in one
// read of x, block by block (each block comes from memory once, its second read hits L1), where the
// three sweeps of softmax_row read a 128 KB row from memory with no arithmetic to overlap and then
// again from L2 (measured 1.2x faster at (4096, 32000) float32, 1 thread). Block b's
// e = exp(z - m_b) with m_b the running max after block b (kept in shifts[b]); the running sum is
// rescaled by exp(m_{b-1} - m_b) when the max grows, and the gradient is block b's e times
// a * exp(m_b - m) (PendingGrad::fb[b]).
// e goes to ebuf: a scratch row when g is 16-byte aligned, and g is written once with non-temporal
// stores (the target's value patched into its vector), so g is never read from memory; otherwise
// g itself (float32), rescaled in place at once. A streamed row's gradient is not written at once
// but inside the next row's exp sweeps (PendingGrad; the chunk's last one by pending_write at the
// chunk's end): its writes then overlap that row's reads and exps, where alone the exps
// waited on reads and then the writes on nothing (at (4096, 32000): float32 1.16x on 1 thread,
// 1.15x on 2; bfloat16 1.05x).
// (e in scratch with g written by plain stores was no faster than three sweeps: the writes wait
// for each line to be read from memory with nothing to overlap.)
// Returns false, having written nothing but scratch (ebuf) and the previous row's pending gradient,
// for a row whose max is +inf, NaN or -inf (softmax_row's sweeps then give the reference's values)
// or longer than kOnlineMaxBlocks blocks; ebuf is never x, nor the pending gradient's e.
constexpr int64_t kOnlineBlock = 2048, kOnlineMaxBlocks = 512;

// Whether softmax_row's rows try the one-read path (rows of a call with a gradient and no Hessian).
template <int MODE, bool CAP> constexpr bool online_rows(bool grad, bool hess, int64_t classes) {
  return MODE == SOFTMAX_HARD && !CAP && grad && !hess && classes > kOnlineBlock;
}

// A long row's gradient still to be written: g[c] = e[c] * fb[c's block] (times scale when that is
// not finite), the target's value gt patched in.
template <class S> struct PendingGrad {
  void* g;  // null: nothing pending
  const S* e;
  int64_t t, classes;
  S gt, scale;
  bool fold, stream;
  S fb[kOnlineMaxBlocks];
};

// Where the online path keeps its second e row and the pending gradient: after thbuf's first row
// (rowwise_plan reserves online_scratch_bytes beyond the row buffers).
template <class S> inline size_t online_row_bytes(int64_t C) { return (size_t(C) * sizeof(S) + 63) & ~size_t(63); }
template <class S> inline size_t online_scratch_bytes(const FlRowwiseArgs& a) {
  if (a.inner != 1 || a.classes <= kOnlineBlock) return 0;
  return online_row_bytes<S>(a.classes) + ((sizeof(PendingGrad<S>) + 63) & ~size_t(63));
}
template <class S> inline PendingGrad<S>& online_pending(S* thbuf, int64_t C) {
  return *reinterpret_cast<PendingGrad<S>*>(reinterpret_cast<char*>(thbuf) + 2 * online_row_bytes<S>(C));
}

// The pending gradient's vector at c, of block factor fb.
template <class V, class T, class Tag>
inline void pending_store(Tag tag, const PendingGrad<typename V::scalar>& p, typename V::scalar fb, int64_t c) {
  using W = vec_t<Tag>;
  W val = step_load(tag, p.e + c) * W(fb);
  if (!p.fold) val = val * W(p.scale);
  if (uint64_t(p.t - c) < uint64_t(W::lanes)) val = with_lane(val, p.t - c, p.gt);
  put(tag, val, static_cast<T*>(p.g) + c, p.stream);
}

// Blocks b0.. of a pending gradient written on their own, then nothing is pending.
template <class V, class T> inline void pending_write(PendingGrad<typename V::scalar>& p, int64_t b0) {
  const int64_t C = p.classes, blocks = (C + kOnlineBlock - 1) / kOnlineBlock;
  for (int64_t b = b0; b < blocks; ++b) {
    const int64_t c0 = b * kOnlineBlock, c1 = c0 + kOnlineBlock < C ? c0 + kOnlineBlock : C;
    vector_loop_tail<V>(c0, c1, [&](int64_t c, auto tag) { pending_store<V, T>(tag, p, p.fb[b], c); });
  }
  if (p.stream) stream_fence();  // the caller (or another thread) reads g next
  p.g = nullptr;
}

template <class V, class T>
inline bool softmax_row_online(const RowContext<typename V::scalar>& k, const T* x, int64_t t, T* g,
                               typename V::scalar scale, typename V::scalar* ebuf, typename V::scalar& loss,
                               PendingGrad<typename V::scalar>& pend) {
  using S = typename V::scalar;
  const int64_t C = k.classes, blocks = (C + kOnlineBlock - 1) / kOnlineBlock;
  if (blocks > kOnlineMaxBlocks) return false;  // (then no row of the call went online: nothing pending)
  S shifts[kOnlineMaxBlocks];
  const S zt = load_scalar<S>(x + t);  // before ebuf, which may be x itself (in place), is written
  const bool carry = pend.g != nullptr;  // the previous row's gradient, written inside this row's exps
  S m = -__builtin_inf();
  Dual<V> s(0);
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kOnlineBlock, c1 = c0 + kOnlineBlock < C ? c0 + kOnlineBlock : C;
    Dual<V> mx(-__builtin_inf());
    vector_loop2_tail<V>(c0, c1, [&](int64_t c, auto tag, int j) {
      mx.get(tag, j) = fl_max(mx.get(tag, j), step_keep(tag, step_load(tag, x + c), -__builtin_inf()));
    });
    const S bm = mx.max();
    if (!(bm < S(__builtin_inf()))) {
      if (carry) pending_write<V, T>(pend, b);
      return false;
    }
    if (bm > m) {
      s.scale(m == -__builtin_inf() ? S(0) : fl_exp(m - bm));  // before any finite max every e was 0
      m = bm;
    }
    shifts[b] = m;
    const S sh = softmax_safe_max(m);
    auto exps = [&](auto with_pending) {
      vector_loop2_tail<V>(c0, c1, [&](int64_t c, auto tag, int j) {
        using W = vec_t<decltype(tag)>;
        if constexpr (W::lanes > 1) {
          if (j == 0) {
            prefetch_ahead<false>(x, c + kOnlineBlock, 2 * W::lanes * sizeof(T), true);
            prefetch_ahead<true>(ebuf, c + kOnlineBlock, 2 * W::lanes * sizeof(S), true);
          }
        }
        const W e = fl_exp_nonpos(step_load(tag, x + c) - W(sh));
        step_store(tag, e, ebuf + c);
        s.get(tag, j) = s.get(tag, j) + step_keep(tag, e, S(0));
        if constexpr (decltype(with_pending)::value) pending_store<V, T>(tag, pend, pend.fb[b], c);
      });
    };
    if (carry) exps(std::true_type());
    else exps(std::false_type());
  }
  if (carry) {
    if (pend.stream) stream_fence();
    pend.g = nullptr;
  }
  if (m == -__builtin_inf()) return false;
  const S ssum = s.sum(), w_t = k.weights[t];
  const SoftmaxRowStats<S> st = softmax_stats(k, m, ssum, zt, w_t, S(0), S(0));
  const SoftmaxRowResult<S> r = softmax_finalize(k, st, S(1));
  pend.fold = scale - scale == S(0);
  pend.scale = scale;
  const S ra = pend.fold ? r.a * scale : r.a;
  const S to_m_t = shifts[t / kOnlineBlock] == m ? S(1) : fl_exp(shifts[t / kOnlineBlock] - m);
  pend.gt = softmax_target_grad<SOFTMAX_HARD>(k, r, load_scalar<S>(ebuf + t) * to_m_t, ssum, m, w_t) * scale;
  for (int64_t b = 0; b < blocks; ++b) pend.fb[b] = shifts[b] == m ? ra : ra * fl_exp(shifts[b] - m);
  pend.g = g;
  pend.e = ebuf;
  pend.t = t;
  pend.classes = C;
  pend.stream = static_cast<const void*>(ebuf) != static_cast<const void*>(g) && can_stream<V>(g);
  if (!pend.stream) pending_write<V, T>(pend, 0);  // e is g itself, or g cannot be streamed
  loss = r.loss;
  return true;
}

// One row x[0..C) (target t, or soft probabilities y); returns the row loss, writes g if not null.
// (Non-temporal gradient stores were measured 1.3-2x slower here than plain ones: the gradient
// row just written is still in L1/L2 and leaves it in the background.)
template <class V, int MODE, bool CAP, class T>
inline typename V::scalar softmax_row(const RowContext<typename V::scalar>& k, const T* x, const T* y, int64_t t,
                                      T* g, T* h, typename V::scalar scale, typename V::scalar* ebuf,
                                      typename V::scalar* thbuf) {
  using S = typename V::scalar;
  const int64_t C = k.classes;
  const S* w = k.weights;
  // 16-bit inputs are widened once: pass 1 keeps z in ebuf (scratch, not the gradient, for them)
  // and pass 2 reads it back, overwriting it with e.
  constexpr bool kKeepZ = !CAP && !std::is_same<T, S>::value;
  if constexpr (MODE == SOFTMAX_HARD && !CAP) {
    S loss;
    // e goes to a scratch row in thbuf when g can take non-temporal stores (a row this long leaves
    // the caches before anyone reads it: 1.05-1.1x faster in float32, 1.2x in bfloat16 at
    // (4096, 32000) on 1 and 2 threads), and in place (ebuf is x; a row falling back must find x
    // intact); of thbuf's two rows, the one the pending gradient does not read.
    if (online_rows<MODE, CAP>(g, h, C)) {
      PendingGrad<S>& pend = online_pending(thbuf, C);
      S* spare = pend.g && pend.e == thbuf ? thbuf + online_row_bytes<S>(C) / sizeof(S) : thbuf;
      S* eb = static_cast<const void*>(ebuf) == static_cast<const void*>(x) || can_stream<V>(g) ? spare : ebuf;
      if (softmax_row_online<V>(k, x, t, g, scale, eb, loss, pend)) return loss;
    }
  }
  Dual<V> mx(-__builtin_inf());
  vector_loop2_tail<V>(0, C, [&](int64_t c, auto tag, int j) {
    using W = vec_t<decltype(tag)>;
    W z = step_load(tag, x + c);
    if constexpr (CAP) {
      W th = fl_tanh(z * W(k.inv_cap));
      step_store(tag, th, thbuf + c);
      z = W(k.cap) * th;
    }
    if constexpr (kKeepZ) step_store(tag, z, ebuf + c);
    mx.get(tag, j) = fl_max(mx.get(tag, j), step_keep(tag, z, -__builtin_inf()));
  });
  const S m = softmax_safe_max(mx.max());
  S zt = 0;
  if constexpr (MODE != SOFTMAX_SOFT) zt = CAP ? k.cap * thbuf[t] : load_scalar<S>(x + t);

  Dual<V> s(0), a1(0), a2(0);
  const bool near = int64_t(C * sizeof(T)) <= kPrefetchL1Bytes;
  vector_loop2_tail<V>(0, C, [&](int64_t c, auto tag, int j) {
    using W = vec_t<decltype(tag)>;
    if constexpr (W::lanes > 1) {
      if (j == 0) {  // rows are contiguous here: the next one starts at x + C
        prefetch_ahead<false>(x, C + c, 2 * W::lanes * sizeof(T), near);
        if (g) prefetch_ahead<true>(g, C + c, 2 * W::lanes * sizeof(T), near);
      }
    }
    W z = CAP ? W(k.cap) * step_load(tag, thbuf + c) : kKeepZ ? step_load(tag, ebuf + c) : step_load(tag, x + c);
    W d = z - W(m);
    W e = fl_exp_nonpos(d);
    if (g || kKeepZ) step_store(tag, e, ebuf + c);
    s.get(tag, j) = s.get(tag, j) + step_keep(tag, e, S(0));
    if constexpr (MODE == SOFTMAX_HARD_SMOOTHED)
      a1.get(tag, j) = a1.get(tag, j) + step_keep(tag, step_load(tag, w + c) * d, S(0));
    if constexpr (MODE == SOFTMAX_SOFT) {
      W wq = step_load(tag, w + c) * cross_entropy_soft_q(step_load(tag, y + c), k.ce);
      a1.get(tag, j) = a1.get(tag, j) + step_keep(tag, wq, S(0));
      a2.get(tag, j) = a2.get(tag, j) + step_keep(tag, wq * d, S(0));
    }
  });
  const S w_t = MODE == SOFTMAX_SOFT ? S(1) : w[t];
  const S ssum = s.sum();
  const SoftmaxRowStats<S> st = softmax_stats(k, m, ssum, zt, w_t, a1.sum(), a2.sum());
  const SoftmaxRowResult<S> r = softmax_finalize(k, st, S(1));
  if (!g) return r.loss;

  const S e_t = MODE == SOFTMAX_SOFT ? S(0) : load_scalar<S>(ebuf + t);  // ebuf may be the caller's gradient
  if (h) {
    softmax_row_hess<V, MODE, CAP>(k, st, softmax_finalize(k, st, scale), y, t, e_t, g, h, scale, ebuf, thbuf);
    return r.loss;
  }
  const bool fold = scale - scale == S(0);  // finite
  const S ra = fold ? r.a * scale : r.a, rb = fold ? r.b * scale : r.b;
  vector_loop_tail<V>(0, C, [&](int64_t c, auto tag) {
    using W = vec_t<decltype(tag)>;
    W val = step_load(tag, ebuf + c) * W(ra);
    if constexpr (MODE == SOFTMAX_HARD_SMOOTHED) val = val - W(rb) * step_load(tag, w + c);
    if constexpr (MODE == SOFTMAX_SOFT)
      val = val - W(rb) * step_load(tag, w + c) * cross_entropy_soft_q(step_load(tag, y + c), k.ce);
    if (!fold) val = val * W(scale);
    if constexpr (CAP) val = val * softcap_dz_dx(step_load(tag, thbuf + c));
    step_store(tag, val, g + c);
  });
  if constexpr (MODE != SOFTMAX_SOFT) {
    S gt = softmax_target_grad<MODE>(k, r, e_t, ssum, m, w_t) * scale;
    if constexpr (CAP) gt *= softcap_dz_dx(thbuf[t]);
    store_scalar(g + t, gt);
  }
  return r.loss;
}

// V::lanes rows side by side: element (c, j) at x[c * inner + j]; targets tgt[j], scales rs[j];
// per-lane losses to loss[j]. ebuf holds e at ebuf[c * estride + j]; thbuf at thbuf[c * lanes + j].
template <class V, int MODE, bool CAP, class T>
inline void softmax_tile(const RowContext<typename V::scalar>& k, const T* x, const T* y, const int64_t* tgt,
                         T* g, T* h, const typename V::scalar* rs, typename V::scalar* loss,
                         typename V::scalar* ebuf, int64_t estride, typename V::scalar* thbuf) {
  using S = typename V::scalar;
  constexpr int NL = V::lanes;
  const int64_t C = k.classes, in = k.inner;
  const S* w = k.weights;
  V mx(-__builtin_inf());
  for (int64_t c = 0; c < C; ++c) {
    V z = V::load(x + c * in);
    if constexpr (CAP) {
      V th = fl_tanh(z * V(k.inv_cap));
      th.store(thbuf + c * NL);
      z = V(k.cap) * th;
    }
    mx = fl_max(mx, z);
  }
  S m[NL], zt[NL], keep[NL];
  mx.lanes_to(m);
  for (int j = 0; j < NL; ++j) {
    m[j] = softmax_safe_max(m[j]);
    keep[j] = MODE == SOFTMAX_SOFT || tgt[j] != k.ignore_index ? S(1) : S(0);
    zt[j] = 0;
    if (MODE != SOFTMAX_SOFT && keep[j] != S(0))
      zt[j] = CAP ? k.cap * thbuf[tgt[j] * NL + j] : load_scalar<S>(x + tgt[j] * in + j);
  }
  const V mv = V::from_lanes(m);
  BlockedSum<V> s, a1, a2;  // one lane per row: a single running sum over C classes, made accurate
  for (int64_t c0 = 0; c0 < C; c0 += kSumBlock) {
    const int64_t c1 = c0 + kSumBlock < C ? c0 + kSumBlock : C;
    for (int64_t c = c0; c < c1; ++c) {
      V z = CAP ? V(k.cap) * V::load(thbuf + c * NL) : V::load(x + c * in);
      V d = z - mv;
      V e = fl_exp_nonpos(d);
      if (g) e.store(ebuf + c * estride);
      s.add(e);
      if constexpr (MODE == SOFTMAX_HARD_SMOOTHED) a1.add(V(w[c]) * d);
      if constexpr (MODE == SOFTMAX_SOFT) {
        V wq = V(w[c]) * cross_entropy_soft_q(V::load(y + c * in), k.ce);
        a1.add(wq);
        a2.add(wq * d);
      }
    }
    s.fold();
    if constexpr (MODE != SOFTMAX_HARD) a1.fold();
    if constexpr (MODE == SOFTMAX_SOFT) a2.fold();
  }
  S sl[NL], a1l[NL], a2l[NL], A[NL], B[NL], TC[NL], et[NL], SC[NL], WT[NL];
  S HA[NL], HB[NL], HG[NL], IR[NL], HT[NL];
  bool HTS[NL];
  s.value().lanes_to(sl);
  for (int j = 0; j < NL; ++j) {
    const bool kept = keep[j] != S(0);
    WT[j] = MODE == SOFTMAX_SOFT || !kept ? S(1) : w[tgt[j]];
    SC[j] = !kept ? S(0) : rs ? k.grad_scale * rs[j] : k.grad_scale;
    et[j] = MODE != SOFTMAX_SOFT && g && kept ? load_scalar<S>(ebuf + tgt[j] * estride + j) : S(0);
  }
  // cross_entropy's loss, coefficients and Hessian terms for all lanes at once (its *_grad_hess is
  // the boosting libraries' multiclass objective): lane by lane, finalizing took ~40 % of a
  // 10-class row (perf, AVX-512 float32).
  if (k.loss_id == LOSS_cross_entropy) {
    const SoftmaxRowStats<V> st = softmax_stats(k, mv, s.value(), V::from_lanes(zt), V::from_lanes(WT),
                                                a1.value(), a2.value());
    const SoftmaxRowResult<V> r = k.soft ? cross_entropy_finalize_soft(st, k.ce, V(1))
                                         : cross_entropy_finalize_hard(st, k.ce, V(1));
    const auto ignored = V::from_lanes(keep) == V(0);
    auto lanes = [&](V v, S* out) { select(ignored, V(0), v).lanes_to(out); };
    lanes(r.loss, loss);
    lanes(r.a, A);
    lanes(r.b, B);
    lanes(r.t_coef, TC);
    SoftmaxRowHess<V> hr{V(0), V(0), V(0), V(0), V(0), false};
    if (h) hr = cross_entropy_hess(st, k.ce, k.soft, V::from_lanes(SC));
    lanes(hr.ha, HA);
    lanes(hr.hb, HB);
    lanes(hr.hg, HG);
    lanes(hr.ir, IR);
    lanes(hr.ht, HT);
    for (int j = 0; j < NL; ++j) HTS[j] = hr.t_special;
  } else {
    a1.value().lanes_to(a1l);
    a2.value().lanes_to(a2l);
    for (int j = 0; j < NL; ++j) {
      A[j] = B[j] = TC[j] = loss[j] = 0;
      HA[j] = HB[j] = HG[j] = IR[j] = HT[j] = 0;
      HTS[j] = false;
      if (keep[j] == S(0)) continue;
      const SoftmaxRowStats<S> st = softmax_stats(k, m[j], sl[j], zt[j], WT[j], a1l[j], a2l[j]);
      const SoftmaxRowResult<S> r = softmax_finalize(k, st, S(1));
      if (h) {
        const SoftmaxRowHess<S> hr = softmax_hess(k, st, SC[j]);
        HA[j] = hr.ha;
        HB[j] = hr.hb;
        HG[j] = hr.hg;
        IR[j] = hr.ir;
        HT[j] = hr.ht;
        HTS[j] = hr.t_special;
      }
      loss[j] = r.loss;
      A[j] = r.a;
      B[j] = r.b;
      TC[j] = r.t_coef;
    }
  }
  if (!g) return;
  bool fold = true;  // every lane's scale finite: folded into the coefficients, as in softmax_row
  for (int j = 0; j < NL; ++j) fold = fold && SC[j] - SC[j] == S(0);
  S AS[NL], BS[NL];
  for (int j = 0; j < NL; ++j) {
    AS[j] = fold ? A[j] * SC[j] : A[j];
    BS[j] = fold ? B[j] * SC[j] : B[j];
  }
  const V av = V::from_lanes(AS), bv = V::from_lanes(BS), keepv = V::from_lanes(keep), scv = V::from_lanes(SC);
  const V hav = V::from_lanes(HA), hbv = V::from_lanes(HB), hgv = V::from_lanes(HG), irv = V::from_lanes(IR);
  for (int64_t c = 0; c < C; ++c) {
    const V e = V::load(ebuf + c * estride);
    V val = e * av;
    if constexpr (MODE == SOFTMAX_HARD_SMOOTHED) val = val - bv * V(w[c]);
    if constexpr (MODE == SOFTMAX_SOFT) val = val - bv * V(w[c]) * cross_entropy_soft_q(V::load(y + c * in), k.ce);
    if (!fold) val = val * scv;
    if (h) {
      V hv = softmax_hess_z(e, hav, hbv, hgv, irv);
      if constexpr (CAP) {
        const V th = V::load(thbuf + c * NL);
        const V dz = softcap_dz_dx(th);
        hv = hv * dz * dz + val * softcap_d2z_dx2(th, k.inv_cap);
      }
      select(keepv == V(0), V(0), hv).store(h + c * in);
    }
    if constexpr (CAP) val = val * softcap_dz_dx(V::load(thbuf + c * NL));
    val = select(keepv == V(0), V(0), val);  // exact zeros for ignored rows, whatever x holds
    val.store(g + c * in);
  }
  if constexpr (MODE != SOFTMAX_SOFT) {
    for (int j = 0; j < NL; ++j) {
      if (keep[j] == S(0)) continue;
      const int64_t t = tgt[j];
      SoftmaxRowResult<S> r;
      r.a = A[j];
      r.b = B[j];
      r.t_coef = TC[j];
      S gt = softmax_target_grad<MODE>(k, r, et[j], sl[j], m[j], w[t]) * SC[j];
      S ht = HTS[j] ? HT[j] : softmax_hess_z(et[j], HA[j], HB[j], HG[j], IR[j]);
      if constexpr (CAP) {
        const S th = thbuf[t * NL + j], dz = softcap_dz_dx(th);
        ht = ht * dz * dz + gt * softcap_d2z_dx2(th, k.inv_cap);
        gt *= dz;
      }
      store_scalar(g + t * in + j, gt);
      if (h) store_scalar(h + t * in + j, ht);
    }
  }
}

FL_NAMESPACE_END
