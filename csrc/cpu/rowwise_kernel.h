// The generic rowwise kernel: splits (outer, C, inner) into fixed chunks, runs each row (inner == 1)
// or tile of V::lanes rows (inner > 1; the last rows of a chunk one lane at a time) through the
// loss's row/tile function, and sums the row losses per chunk in row order (double).
#pragma once

#include <stdint.h>

#include <type_traits>

#include "distill_kernel.h"
#include "hinge_kernel.h"
#include "row_loop.h"
#include "small_rows.h"
#include "softmax_kernel.h"
#include "wasserstein_kernel.h"
#include "workspace.h"

FL_NAMESPACE_BEGIN

constexpr int64_t kTileChunk = 1024;  // inner positions per chunk: a multiple of every lane count

inline size_t align64(size_t n) { return (n + 63) & ~size_t(63); }

template <class V> inline WorkPlan rowwise_plan(const FlRowwiseArgs& a) {
  using S = typename V::scalar;
  WorkPlan p;
  const int64_t width = a.inner == 1 ? 1 : V::lanes;
  p.scratch_per_thread = 2 * align64(size_t(a.classes) * size_t(width) * sizeof(S));
  p.scratch_per_thread += small_rows_scratch<V>(a) + online_scratch_bytes<S>(a);
  if (a.inner == 1) {
    int64_t rows = 16384 / (a.classes > 0 ? a.classes : 1);
    rows = rows < 1 ? 1 : rows > 64 ? 64 : rows;
    // Long rows: up to 8 per chunk (a softmax row's gradient is written inside the next row of its
    // chunk), and at least 64 chunks while there are rows for them.
    if (a.classes > kOnlineBlock) rows = a.outer / 64 < 1 ? 1 : a.outer / 64 > 8 ? 8 : a.outer / 64;
    p.chunks = (a.outer + rows - 1) / rows;
  } else {
    p.chunks = a.outer * ((a.inner + kTileChunk - 1) / kTileChunk);
  }
  return p;
}

// The loss of one call: row(x, y, t, g, h, scale, ebuf, thbuf) -> loss for a contiguous row, and
// tile(tag, x, y, tgt, g, h, rs, loss, ebuf, estride, thbuf) for decltype(tag)::lanes rows at stride
// inner; h (the Hessian of the *_grad_hess form) is null unless a.hess_out is set.
// kKeepInput: ebuf is never the gradient over an in-place x (the loss may reread x after its sweeps).
// chunk_edge(thbuf, starting) runs before and after the rows of each chunk (rows only).
struct NoChunkEdge {
  template <class S> void operator()(S*, bool) const {}
};
template <class V, class T, bool kKeepInput = false, class Row, class Tile, class Edge = NoChunkEdge>
inline double rowwise_loop(const FlRowwiseArgs& a, const Workspace& ws, const RowContext<typename V::scalar>& k,
                           Row&& row, Tile&& tile, Edge&& chunk_edge = Edge()) {
  using S = typename V::scalar;
  using L = Lane1<S>;
  constexpr bool kGradIsMath = std::is_same<T, S>::value;
  const WorkPlan plan = rowwise_plan<V>(a);
  const int64_t C = a.classes, inner = a.inner;
  const T* x = static_cast<const T*>(a.x);
  const T* y = static_cast<const T*>(a.soft_target);
  T* g = static_cast<T*>(a.grad_out);
  T* hs = static_cast<T*>(a.hess_out);
  const S* rs = static_cast<const S*>(a.row_scale);
  S* loss_out = static_cast<S*>(a.loss_out);
  const size_t half = (plan.scratch_per_thread - online_scratch_bytes<S>(a)) / 2;  // thbuf's region ends with it

  parallel_chunks(plan.chunks, ws.threads, ws.scratch, ws.scratch_per_thread, [&](int64_t chunk, char* scratch) {
    S* ebuf = reinterpret_cast<S*>(scratch);
    S* thbuf = reinterpret_cast<S*>(scratch + half);
    double part = 0;
    if (inner == 1) {
      const int64_t rows = (a.outer + plan.chunks - 1) / plan.chunks;
      const int64_t r0 = chunk * rows, r1 = r0 + rows < a.outer ? r0 + rows : a.outer;
      int64_t r = r0;
      if (small_rows<V>(a)) r = small_rows_blocks<V, T>(a, k, r0, r1, scratch, tile, part);
      chunk_edge(thbuf, true);
      for (; r < r1; ++r) {
        T* gr = g ? g + r * C : nullptr;
        T* hr = hs ? hs + r * C : nullptr;
        const int64_t t = k.soft ? -1 : load_raw(a.target + r);
        S l = 0;
        if (!k.soft && t == k.ignore_index) {
          if (gr) vector_loop<V>(0, C, [&](int64_t c, auto tag) { decltype(tag)(S(0)).store(gr + c); });
          if (hr) vector_loop<V>(0, C, [&](int64_t c, auto tag) { decltype(tag)(S(0)).store(hr + c); });
        } else {
          const bool over_x = kKeepInput && static_cast<const void*>(gr) == static_cast<const void*>(x + r * C);
          S* eb = kGradIsMath && gr && !over_x ? reinterpret_cast<S*>(gr) : ebuf;
          l = row(x + r * C, y ? y + r * C : nullptr, t, gr, hr, rs ? k.grad_scale * load_scalar<S>(rs + r) : k.grad_scale, eb,
                  thbuf);
        }
        if (loss_out) store_scalar(loss_out + r, l);
        part += double(l);
      }
      chunk_edge(thbuf, false);
    } else {
      const int64_t groups = (inner + kTileChunk - 1) / kTileChunk;
      const int64_t o = chunk / groups, i0 = (chunk % groups) * kTileChunk;
      const int64_t i1 = i0 + kTileChunk < inner ? i0 + kTileChunk : inner;
      const int64_t base = o * C * inner;
      S lanes_loss[V::lanes], lanes_rs[V::lanes];
      int64_t lanes_t[V::lanes];
      auto run = [&](int64_t i, auto tag) {
        using W = decltype(tag);
        T* gt = g ? g + base + i : nullptr;
        T* ht = hs ? hs + base + i : nullptr;
        const bool own = kGradIsMath && gt &&
                         !(kKeepInput && static_cast<const void*>(gt) == static_cast<const void*>(x + base + i));
        S* eb = own ? reinterpret_cast<S*>(gt) : ebuf;
        const int64_t estride = own ? inner : W::lanes;
        const int64_t* tl = k.soft ? nullptr : lane_copy<W::lanes>(a.target + o * inner + i, lanes_t);
        tile(tag, x + base + i, y ? y + base + i : nullptr, tl, gt, ht,
             rs ? lane_copy<W::lanes>(rs + o * inner + i, lanes_rs) : nullptr, lanes_loss, eb, estride, thbuf);
        for (int j = 0; j < W::lanes; ++j) {
          if (loss_out) store_scalar(loss_out + o * inner + i + j, lanes_loss[j]);
          part += double(lanes_loss[j]);
        }
      };
      int64_t i = i0;
      for (; i + V::lanes <= i1; i += V::lanes) run(i, V());
      for (; i < i1; ++i) run(i, L());
    }
    ws.partials[chunk] = part;
  });
  double total = 0;
  if (a.need_loss)
    for (int64_t c = 0; c < plan.chunks; ++c) total += ws.partials[c];
  return total;
}

template <class V, int MODE, bool CAP, class T>
inline double softmax_rowwise(const FlRowwiseArgs& a, const Workspace& ws, const RowContext<typename V::scalar>& k) {
  using S = typename V::scalar;
  return rowwise_loop<V, T>(
      a, ws, k,
      [&](const T* x, const T* y, int64_t t, T* g, T* h, S scale, S* eb, S* th) {
        return softmax_row<V, MODE, CAP>(k, x, y, t, g, h, scale, eb, th);
      },
      [&](auto tag, const T* x, const T* y, const int64_t* tgt, T* g, T* h, const S* rs, S* loss, S* eb, int64_t es,
          S* th) { softmax_tile<decltype(tag), MODE, CAP>(k, x, y, tgt, g, h, rs, loss, eb, es, th); },
      [&](S* thbuf, bool starting) {  // the chunk's last pending gradient (softmax_row_online)
        if (!online_rows<MODE, CAP>(a.grad_out, a.hess_out, k.classes)) return;
        PendingGrad<S>& pend = online_pending(thbuf, k.classes);
        if (starting) pend.g = nullptr;
        else if (pend.g) pending_write<V, T>(pend, 0);
      });
}

template <class V, class T> inline double rowwise_run(const FlRowwiseArgs& a, const Workspace& ws) {
  using S = typename V::scalar;
  RowContext<S> k(a, static_cast<const S*>(ws.weights), ws.weight_sum);
  k.inner = small_rows_stride<V>(a);
  switch (static_cast<LossId>(a.loss_id)) {
    case LOSS_multiclass_hinge_loss:
      return rowwise_loop<V, T>(
          a, ws, k,
          [&](const T* x, const T*, int64_t t, T* g, T* h, S scale, S*, S*) { return hinge_row<V>(k, x, t, g, h, scale); },
          [&](auto tag, const T* x, const T*, const int64_t* tgt, T* g, T* h, const S* rs, S* loss, S*, int64_t, S*) {
            hinge_tile<decltype(tag)>(k, x, tgt, g, h, rs, loss);
          });
    case LOSS_softmax_kl_div:  // its centred rescue rereads x
      return rowwise_loop<V, T, true>(
          a, ws, k,
          // hess_out (T* h) never reaches these families: dispatch.cpp refuses it (FL_LOSSES_WITHOUT_NATIVE_HESS)
          [&](const T* x, const T* y, int64_t, T* g, T*, S scale, S* eb, S* tb) {
            return distill_row<V>(k, x, y, g, scale, eb, tb);
          },
          [&](auto tag, const T* x, const T* y, const int64_t*, T* g, T*, const S* rs, S* loss, S* eb, int64_t es,
              S* tb) { distill_tile<decltype(tag)>(k, x, y, g, rs, loss, eb, es, tb); });
    case LOSS_wasserstein_loss:
      return rowwise_loop<V, T>(
          a, ws, k,
          [&](const T* x, const T* y, int64_t t, T* g, T*, S scale, S* eb, S* hb) {
            return wasserstein_row<V>(k, x, y, t, g, scale, eb, hb);
          },
          [&](auto tag, const T* x, const T* y, const int64_t* tgt, T* g, T*, const S* rs, S* loss, S* eb,
              int64_t es, S* hb) { wasserstein_tile<decltype(tag)>(k, x, y, tgt, g, rs, loss, eb, es, hb); });
#define FL_CASE(name) case LOSS_##name:
    FL_LOSSES_ROW_SOFTMAX(FL_CASE)
      break;
    FL_LOSSES_POINTWISE(FL_CASE)
      return 0;  // not reached: fastloss_rowwise rejects point-wise ids first
#undef FL_CASE
  }
  const bool cap = k.cap > S(0);
  if (k.soft) return cap ? softmax_rowwise<V, SOFTMAX_SOFT, true, T>(a, ws, k) : softmax_rowwise<V, SOFTMAX_SOFT, false, T>(a, ws, k);
  if (k.ce.eps != S(0))
    return cap ? softmax_rowwise<V, SOFTMAX_HARD_SMOOTHED, true, T>(a, ws, k)
               : softmax_rowwise<V, SOFTMAX_HARD_SMOOTHED, false, T>(a, ws, k);
  return cap ? softmax_rowwise<V, SOFTMAX_HARD, true, T>(a, ws, k) : softmax_rowwise<V, SOFTMAX_HARD, false, T>(a, ws, k);
}

FL_NAMESPACE_END
