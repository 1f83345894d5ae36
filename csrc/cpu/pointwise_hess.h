// The *_grad_hess form of point-wise losses: one read of x and target, one write each of the
// gradient and the diagonal Hessian (both times grad_scale * row_scale[i], the sample weights),
// in chunks of kPointChunk elements. No loss is summed; grad_out and hess_out never alias x
// (fastloss_pointwise refuses it), so the target domain is checked in the same pass.
#pragma once

#include <stdint.h>

#include <type_traits>

#include "row_loop.h"
#include "workspace.h"

FL_NAMESPACE_BEGIN

// grad_hess(x, y, i) -> GradHess of element i: the loss struct's grad_hess (csrc/fastloss/losses/<name>.h)
// with the element's per-element vectors.
template <class V, class T, class GH, class Invalid>
inline double pointwise_hess_loop(const FlPointwiseArgs& a, const Workspace& ws, int64_t chunk_size,
                                  GH&& grad_hess, Invalid&& invalid, bool check) {
  using S = typename V::scalar;
  const int64_t chunks = (a.n + chunk_size - 1) / chunk_size;
  const T* x = static_cast<const T*>(a.x);
  const T* y = static_cast<const T*>(a.target);
  T* g = static_cast<T*>(a.grad_out);
  T* h = static_cast<T*>(a.hess_out);
  const S* rs = static_cast<const S*>(a.row_scale);
  const S gs = S(a.grad_scale);
  const bool stream = a.n * int64_t(sizeof(T)) >= kStreamBytes && can_stream<V>(g) && can_stream<V>(h);
  parallel_chunks(chunks, ws.threads, ws.scratch, ws.scratch_per_thread, [&](int64_t chunk, char*) {
    const int64_t i0 = chunk * chunk_size, i1 = i0 + chunk_size < a.n ? i0 + chunk_size : a.n;
    Dual<V> bad(0);
    vector_loop2<V>(i0, i1, [&](int64_t i, auto tag, int j) {
      using W = decltype(tag);
      const W yv = W::load(y + i);
      if (check) bad.get(tag, j) = bad.get(tag, j) + invalid(yv);
      const GradHess<W> r = grad_hess(W::load(x + i), yv, i);
      const W scale = rs ? W::load(rs + i) * W(gs) : W(gs);
      put(r.grad * scale, g + i, stream);
      put(r.hess * scale, h + i, stream);
    });
    if (stream) stream_fence();
    if (check && bad.sum() != S(0)) __atomic_store_n(ws.target_invalid, 1, __ATOMIC_RELAXED);
    ws.partials[chunk] = 0;
  });
  return 0;
}

FL_NAMESPACE_END
