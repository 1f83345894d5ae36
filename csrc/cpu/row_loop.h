// Loop helpers shared by the kernels: a range walked with whole vectors V and then one-lane
// L = Lane1 steps for the tail, with per-type accumulators; and the OpenMP chunk loop.
#pragma once

#include <stdint.h>

#include <cstring>
#include <type_traits>

#include "simd/vec_scalar.h"
#include "workspace.h"

#if defined(FASTLOSS_THREAD_POOL)
#include "thread_pool.h"
#elif defined(_OPENMP)
#include <omp.h>
#endif

FL_NAMESPACE_BEGIN

// The step tag of a row's last n < V::lanes elements taken as one vector V (vector_loop_tail):
// step_load / step_store read and write only those n, step_keep sets the lanes past them. One
// masked vector instead of n one-lane steps, each with the C library's exp: at C = 1000 float32
// the 8 tail elements took 9 % of the row.
template <class V> struct Tail {
  int n;
};
template <class W> struct VecOf { using type = W; };
template <class V> struct VecOf<Tail<V>> { using type = V; };
template <class W> using vec_t = typename VecOf<W>::type;  // the vector type of a step tag

template <class V, class T, class = void> struct HasMasked : std::false_type {};
template <class V, class T>
struct HasMasked<V, T, std::void_t<decltype(V::load_n(static_cast<const T*>(nullptr), 0))>> : std::true_type {};

template <class V, class T> inline V step_load(V, const T* p) { return V::load(p); }
template <class V, class T> inline V step_load(Tail<V> tail, const T* p) {  // lanes past n are zero
  if constexpr (HasMasked<V, T>::value) {
    return V::load_n(p, tail.n);
  } else {
    T buf[V::lanes];
    std::memset(static_cast<void*>(buf), 0, sizeof buf);
    std::memcpy(static_cast<void*>(buf), p, size_t(tail.n) * sizeof(T));
    return V::load(buf);
  }
}
template <class V, class T> inline void step_store(V, V v, T* p) { v.store(p); }
template <class V, class T> inline void step_store(Tail<V> tail, V v, T* p) {
  if constexpr (HasMasked<V, T>::value) {
    v.store_n(p, tail.n);
  } else {
    T buf[V::lanes];
    v.store(buf);
    std::memcpy(static_cast<void*>(p), buf, size_t(tail.n) * sizeof(T));
  }
}
template <class V> inline V step_keep(V, V v, typename V::scalar) { return v; }
template <class V> inline V step_keep(Tail<V> tail, V v, typename V::scalar fill) {  // lanes past n = fill
  if constexpr (HasMasked<V, typename V::scalar>::value) {
    return v.keep_n(tail.n, fill);
  } else {
    typename V::scalar lanes[V::lanes];
    v.lanes_to(lanes);
    for (int i = tail.n; i < V::lanes; ++i) lanes[i] = fill;
    return V::from_lanes(lanes);
  }
}

// Two vector accumulators (for vector_loop2's two independent chains) and a one-lane twin for the
// tail; get(tag) / get(tag, k) pick by the step's type and chain (a Tail step adds to chain 0).
template <class V> struct Dual {
  using L = Lane1<typename V::scalar>;
  V v, v2;
  L l;
  explicit Dual(typename V::scalar init) : v(init), v2(init), l(init) {}
  template <class W> auto& get(W tag, int k = 0) {  // V == L for the scalar ISA: then only v, v2 are used
    (void)tag;
    if constexpr (std::is_same<W, V>::value) return k ? v2 : v;
    else if constexpr (std::is_same<W, Tail<V>>::value) return v;
    else return l;
  }
  void scale(typename V::scalar f) {
    v = v * V(f);
    v2 = v2 * V(f);
    l = l * L(f);
  }
  typename V::scalar sum() const { return hsum(v + v2) + l.v; }
  typename V::scalar max() const { return fl_max(hmax(fl_max(v, v2)), l.v); }
};

// A long per-lane sum (a tile's classes, one lane per row): terms are added plainly within blocks
// of kSumBlock, and the block sums into a compensated total (TwoSum, branch-free). The error is then
// that of a kSumBlock-term sum, whatever the count; a plain running sum of 2^20 float32 terms was
// 20x less accurate than the rows' many-accumulator sums. A non-finite total is returned as is
// (its compensation term is NaN).
constexpr int64_t kSumBlock = 64;
template <class V> struct BlockedSum {
  V total, comp, part;
  BlockedSum() : total(0), comp(0), part(0) {}
  void add(V v) { part = part + v; }
  void fold() {
    const V t = total + part, back = t - total;
    comp = comp + ((total - (t - back)) + (part - back));
    total = t;
    part = V(0);
  }
  V value() const { return select(fl_abs(total) < V(__builtin_inf()), total + comp, total); }
};

// body(i, tag) for i = begin, begin + V::lanes, ... with tag a V, then i = ..., end-1 with tag an L.
template <class V, class Body> inline void vector_loop(int64_t begin, int64_t end, Body&& body) {
  int64_t i = begin;
  for (; i + V::lanes <= end; i += V::lanes) body(i, V());
  for (; i < end; ++i) body(i, Lane1<typename V::scalar>());
}

// body(i, tag, k) as vector_loop, two vectors per iteration with k = 0, 1 naming independent
// accumulator chains (Dual::get(tag, k)): a chain of dependent max/add or a long exp per vector
// otherwise leaves the FP pipes idle.
template <class V, class Body> inline void vector_loop2(int64_t begin, int64_t end, Body&& body) {
  int64_t i = begin;
  for (; i + 2 * V::lanes <= end; i += 2 * V::lanes) {
    body(i, V(), 0);
    body(i + V::lanes, V(), 1);
  }
  vector_loop<V>(i, end, [&](int64_t j, auto tag) { body(j, tag, 0); });
}

// vector_loop2 and vector_loop with the last n < V::lanes elements as one Tail<V> step instead of
// n one-lane steps; bodies read and write through step_load / step_store / step_keep.
template <class V, class Body> inline void vector_loop2_tail(int64_t begin, int64_t end, Body&& body) {
  int64_t i = begin;
  for (; i + 2 * V::lanes <= end; i += 2 * V::lanes) {
    body(i, V(), 0);
    body(i + V::lanes, V(), 1);
  }
  if (i + V::lanes <= end) {
    body(i, V(), 0);
    i += V::lanes;
  }
  if constexpr (V::lanes > 1) {
    if (i < end) body(i, Tail<V>{int(end - i)}, 0);
  }
}
template <class V, class Body> inline void vector_loop_tail(int64_t begin, int64_t end, Body&& body) {
  int64_t i = begin;
  for (; i + V::lanes <= end; i += V::lanes) body(i, V());
  if constexpr (V::lanes > 1) {
    if (i < end) body(i, Tail<V>{int(end - i)});
  }
}

// Prefetch the bytes [p, p + bytes) of the row after this one while this row's exp sweep runs:
// the sweeps after the first read the row from L1/L2, so without it the next row's first sweep
// waits on memory with no arithmetic to overlap. Rows up to kPrefetchL1Bytes go to L1, longer
// ones to L2 (a 128 KB row would evict the row being computed). The bytes start `ahead` elements
// past p: integer arithmetic, as the address may lie past the end of the array (a prefetch never
// faults, a pointer formed there would be undefined).
constexpr int64_t kPrefetchL1Bytes = 16384;
template <bool WRITE, class T> inline void prefetch_ahead(const T* p, int64_t ahead, int64_t bytes, bool to_l1) {
  const uintptr_t c = reinterpret_cast<uintptr_t>(p) + uintptr_t(ahead) * sizeof(T);
  for (int64_t b = 0; b < bytes; b += 64) {
    const void* q = reinterpret_cast<const void*>(c + uintptr_t(b));
    if (to_l1) __builtin_prefetch(q, WRITE ? 1 : 0, 3);
    else __builtin_prefetch(q, WRITE ? 1 : 0, 2);
  }
}

// n values from p (any alignment) into the aligned local array out, which is returned: the
// tiles index their targets and row scales as plain arrays. With m < n values at p, the lanes from
// m on repeat value m - 1 (a padded last block of rows).
template <int n, class T> inline const T* lane_copy(const T* p, T* out, int m = n) {
  const int k = m < n ? m : n;  // m <= n always; the bound tells GCC's -Warray-bounds so
  std::memcpy(out, p, size_t(k) * sizeof(T));
  for (int j = k; j < n; ++j) out[j] = out[k - 1];
  return out;
}

// Store v at p, non-temporally for whole vectors when `stream` (p 16-byte aligned: see can_stream).
template <class W, class T> inline void put(W v, T* p, bool stream) {
  if constexpr (W::lanes > 1) {
    if (stream) {
      v.stream(p);
      return;
    }
  }
  v.store(p);
}
template <class V, class T> inline void put(Tail<V> tail, V v, T* p, bool) { step_store(tail, v, p); }
template <class V, class T> inline void put(V, V v, T* p, bool stream) { put(v, p, stream); }

// v with lane i replaced by s: a row's target-class value goes out with its vector (a scalar store
// after a non-temporal one to the same line would fetch the line back from memory).
template <class W, class S> inline W with_lane(W v, int64_t i, S s) {
  S lanes[W::lanes];
  v.lanes_to(lanes);
  lanes[i] = s;
  return W::from_lanes(lanes);
}

// Pointwise gradients at least this large bypass the caches (they would only evict the inputs).
constexpr int64_t kStreamBytes = int64_t(8) << 20;

// Whole vectors starting at p, p + lanes, ... can be streamed: p is 16-byte aligned (and so is
// every lanes * sizeof(T) step). Streaming changes only how values are stored, never which.
template <class V, class T> inline bool can_stream(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0 && (V::lanes * sizeof(T)) % 16 == 0;
}

inline int thread_id() {
#if defined(_OPENMP) && !defined(FASTLOSS_THREAD_POOL)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

// work(chunk, scratch_of_this_thread) for every chunk, in parallel; threads only change who runs
// a chunk, never what it computes. Dynamic scheduling: on a shared machine one thread is often
// descheduled, and a static split would make the whole call wait for its half.
template <class Work> inline void parallel_chunks(int64_t chunks, int threads, char* scratch, size_t per_thread,
                                                  Work&& work) {
  const std::atomic<int>* stop = call_interrupt();  // Ctrl-C: the remaining chunks are skipped
#if defined(FASTLOSS_THREAD_POOL)
  struct Job {
    std::remove_reference_t<Work>* work;
    char* scratch;
    size_t per_thread;
    const std::atomic<int>* stop;
  } job{&work, scratch, per_thread, stop};
  pool_run(chunks, threads, [](void* ctx, int64_t k, int thread) {
    Job& j = *static_cast<Job*>(ctx);
    if (!j.stop || !j.stop->load(std::memory_order_relaxed)) (*j.work)(k, j.scratch + size_t(thread) * j.per_thread);
  }, &job);
#else
  (void)threads;
#pragma omp parallel for schedule(dynamic) num_threads(threads) if (threads > 1 && chunks > 1)
  for (int64_t k = 0; k < chunks; ++k)
    if (!stop || !stop->load(std::memory_order_relaxed)) work(k, scratch + size_t(thread_id()) * per_thread);
#endif
}

FL_NAMESPACE_END
