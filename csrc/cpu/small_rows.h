// Rows of few classes (class axis last): softmax_row / hinge_row would walk most of such a row one
// lane at a time (vector_loop's tail), so whole blocks of V::lanes rows are transposed, in L1, into
// the tile layout (C, V::lanes), run through the loss's tile function (vectorised across the rows)
// and their gradient transposed back. The rows of a chunk after its last whole block take the row
// function as before; losses are still summed in row order, so the chunk plan alone fixes them.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <type_traits>
#include <type_traits>

#include "row_context.h"
#include "row_loop.h"

FL_NAMESPACE_BEGIN

// Rows of at most this many classes take the tile path. Measured (cross_entropy and
// multiclass_hinge_loss, float32 and bfloat16, AVX-512 and AVX2, 1 thread): the tiles win up to
// 31 classes (cross_entropy 2-3x at 2 to 10 classes, the hinge 1.1-1.2x), the rows from 33 on
// (about even at 33 on AVX-512, rows up to 3x faster at 64 to 100).
constexpr int64_t kSmallRowsMaxClasses = 31;

template <class V> inline bool small_rows(const FlRowwiseArgs& a) {
  return V::lanes > 1 && a.inner == 1 && a.classes <= kSmallRowsMaxClasses;
}

// The tile stride of the call's RowContext: the row functions never read it, the tiles of small
// rows are V::lanes wide.
template <class V> inline int64_t small_rows_stride(const FlRowwiseArgs& a) {
  return small_rows<V>(a) ? V::lanes : a.inner;
}

// One tile buffer: C x V::lanes values of the math type (an upper bound for the storage type too),
// a whole number of vectors, so every buffer below starts vector-aligned.
template <class V> inline size_t small_rows_buffer(int64_t classes) {
  return size_t(classes) * V::lanes * sizeof(typename V::scalar);
}

// Per-thread scratch of the tile path (x, y, g, h in the storage type, e and tanh in the math type);
// it reuses the row buffers' scratch, which the rows after the blocks need only later. Rounded to
// 128 bytes so that the row buffers' halves stay 64-byte aligned.
template <class V> inline size_t small_rows_scratch(const FlRowwiseArgs& a) {
  return small_rows<V>(a) ? (6 * small_rows_buffer<V>(a.classes) + 127) & ~size_t(127) : 0;
}

// rows (n x C, row-major) -> tile (C x n), and back. The fixed-length inner loop over the n rows
// was measured 1.5-3x faster than walking each row (the compiler unrolls it into one vector).
// The caller's rows may be misaligned for T (the tile never is): their elements move by memcpy.
// A chunk's last block has m < n rows: its lanes from m on repeat row m - 1 (a real row, computed
// and dropped), and only the m rows go back; whole blocks pass m = n, a constant once inlined.
template <int n, class T> inline void rows_to_tile(const T* rows, T* tile, int64_t C, int m) {
  for (int64_t c = 0; c < C; ++c)
    for (int j = 0; j < n; ++j) tile[c * n + j] = load_raw(rows + (j < m ? j : m - 1) * C + c);
}
template <int n, class T> inline void tile_to_rows(const T* tile, T* rows, int64_t C, int m) {
  for (int64_t c = 0; c < C; ++c)
    for (int j = 0; j < m; ++j) store_raw(rows + j * C + c, tile[c * n + j]);
}

// Rows [r0, r1) in blocks of V::lanes through tile (rowwise_loop's signature, k.inner == V::lanes),
// the last one padded; adds their losses to part in row order and returns r1. Every row goes through
// the tile, so a row's values never depend on where it lies in the batch (the rows after the last
// whole block once took the row function, whose vector sums add in another order: the same rows
// repeated as sample weights then gave XGBoost other gradients).
template <class V, class T, class Tile>
inline int64_t small_rows_blocks(const FlRowwiseArgs& a, const RowContext<typename V::scalar>& k, int64_t r0,
                                 int64_t r1, char* scratch, Tile& tile, double& part) {
  using S = typename V::scalar;
  constexpr int NL = V::lanes;
  const int64_t C = a.classes;
  const size_t buf = small_rows_buffer<V>(C);
  T* xt = reinterpret_cast<T*>(scratch);
  T* yt = reinterpret_cast<T*>(scratch + buf);
  T* gt = reinterpret_cast<T*>(scratch + 2 * buf);
  S* ebuf = reinterpret_cast<S*>(scratch + 3 * buf);
  S* thbuf = reinterpret_cast<S*>(scratch + 4 * buf);
  T* ht = reinterpret_cast<T*>(scratch + 5 * buf);
  const T* x = static_cast<const T*>(a.x);
  const T* y = static_cast<const T*>(a.soft_target);
  T* g = static_cast<T*>(a.grad_out);
  T* h = static_cast<T*>(a.hess_out);
  const S* rs = static_cast<const S*>(a.row_scale);
  S* loss_out = static_cast<S*>(a.loss_out);
  S lanes_loss[NL], lanes_rs[NL];
  int64_t lanes_t[NL];
  for (int64_t r = r0; r < r1; r += NL) {
    const int m = r + NL <= r1 ? NL : int(r1 - r);
    auto block = [&](auto rows) {  // rows: NL as a constant for whole blocks (the loops unroll), else m
      rows_to_tile<NL>(x + r * C, xt, C, rows);
      if (y) rows_to_tile<NL>(y + r * C, yt, C, rows);
      const int64_t* tl = k.soft ? nullptr : lane_copy<NL>(a.target + r, lanes_t, rows);
      tile(V(), xt, y ? yt : nullptr, tl, g ? gt : nullptr, h ? ht : nullptr,
           rs ? lane_copy<NL>(rs + r, lanes_rs, rows) : nullptr, lanes_loss, ebuf, int64_t(NL), thbuf);
      if (g) tile_to_rows<NL>(gt, g + r * C, C, rows);
      if (h) tile_to_rows<NL>(ht, h + r * C, C, rows);
    };
    if (m == NL) block(std::integral_constant<int, NL>());
    else block(m);
    for (int j = 0; j < m; ++j) {
      if (loss_out) store_scalar(loss_out + r + j, lanes_loss[j]);
      part += double(lanes_loss[j]);
    }
  }
  return r1;
}

FL_NAMESPACE_END
