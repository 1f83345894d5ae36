// The generic pointwise kernel: one read of x and target, one write of the gradient (and of the
// loss for reduction="none"), chunks of kPointChunk elements whose loss sums (double lanes) are
// added in chunk order.
#pragma once

#include <stdint.h>

#include <array>
#include <type_traits>

#include "fastloss_generated/pointwise_losses.h"
#include "pointwise_hess.h"
#include "row_loop.h"
#include "workspace.h"

FL_NAMESPACE_BEGIN

constexpr int64_t kPointChunk = 16384;
// Compute-bound losses (sigmoid_focal_loss: ~1 ns/element in cache) ask for their inputs this many
// elements ahead: without it their DRAM time added to the compute time instead of overlapping it
// (16M elements: 1.39 -> 1.23 ns/element; 256 to 1024 ahead alike, 2048 worse). Memory-bound
// losses run faster without (huber: 0.38 vs 0.5 ns/element): the hardware prefetchers keep up.
constexpr int64_t kPrefetchAhead = 512;

inline WorkPlan pointwise_plan(const FlPointwiseArgs& a) {
  WorkPlan p;
  p.chunks = (a.n + kPointChunk - 1) / kPointChunk;
  p.scratch_per_thread = 0;
  return p;
}

// Loss sums: a double vector for V's steps and a double lane for the tail's.
template <class V, class VD> struct LossAccumulator {
  using L = Lane1<typename V::scalar>;
  VD v = VD(0.0);
  Lane1<double> l = Lane1<double>(0.0);
  template <class W> auto& get(W) {  // V == L for the scalar ISA: then only v is used
    if constexpr (std::is_same<W, V>::value) return v; else return l;
  }
};

// Targets of losses without a domain to check.
struct AnyTarget {
  template <class W> W operator()(W) const { return W(0); }
};

// f(x, y) -> LossGrad for any vector width; VD is the double vector type of the ISA. invalid(y)
// is 1 for a target outside the loss's domain: checked in the same pass (one compare or two per
// vector, instead of a NumPy pass over the targets before the call), or in a pass of its own
// before anything is written when the gradient overwrites x.
template <class V, class VD, class T, bool kPrefetch, class F, class Invalid>
inline double pointwise_loop(const FlPointwiseArgs& a, const Workspace& ws, F&& f, Invalid&& invalid) {
  using S = typename V::scalar;
  constexpr bool kCheck = !std::is_same<std::decay_t<Invalid>, AnyTarget>::value;
  const WorkPlan plan = pointwise_plan(a);
  const T* x = static_cast<const T*>(a.x);
  const T* y = static_cast<const T*>(a.target);
  T* g = static_cast<T*>(a.grad_out);
  const S* rs = static_cast<const S*>(a.row_scale);
  S* loss_out = static_cast<S*>(a.loss_out);
  const S gs = S(a.grad_scale);
  const bool need_loss = a.need_loss != 0;
  const bool stream = g && a.n * int64_t(sizeof(T)) >= kStreamBytes && can_stream<V>(g);
  const bool check_first = kCheck && static_cast<const void*>(g) == a.x;
  auto chunk_range = [&](int64_t chunk, int64_t& i0, int64_t& i1) {
    i0 = chunk * kPointChunk;
    i1 = i0 + kPointChunk < a.n ? i0 + kPointChunk : a.n;
  };
  // Integer arithmetic: the address may lie past the end of the array (a prefetch never faults).
  auto ahead = [](const T* p) {
    return reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + kPrefetchAhead * sizeof(T));
  };
  auto flag_if = [&](S bad) {
    if (bad != S(0)) __atomic_store_n(ws.target_invalid, 1, __ATOMIC_RELAXED);
  };
  if (check_first) {
    parallel_chunks(plan.chunks, ws.threads, ws.scratch, ws.scratch_per_thread, [&](int64_t chunk, char*) {
      int64_t i0, i1;
      chunk_range(chunk, i0, i1);
      Dual<V> bad(0);
      vector_loop<V>(i0, i1, [&](int64_t i, auto tag) {
        using W = decltype(tag);
        bad.get(tag) = bad.get(tag) + invalid(W::load(y + i));
      });
      flag_if(bad.sum());
    });
    if (*ws.target_invalid) return 0;
  }
  parallel_chunks(plan.chunks, ws.threads, ws.scratch, ws.scratch_per_thread, [&](int64_t chunk, char*) {
    int64_t i0, i1;
    chunk_range(chunk, i0, i1);
    LossAccumulator<V, VD> acc;
    Dual<V> bad(0);
    auto step = [&](int64_t i, auto tag) {  // stores what is asked for, returns the losses
      using W = decltype(tag);
      const W yv = W::load(y + i);
      if constexpr (kCheck) {
        if (!check_first) bad.get(tag) = bad.get(tag) + invalid(yv);
      }
      const LossGrad<W> r = f(W::load(x + i), yv, i);
      if (loss_out) r.loss.store(loss_out + i);
      if (g) put(r.grad * (rs ? W::load(rs + i) * W(gs) : W(gs)), g + i, stream);
      return r.loss;
    };
    // Four independent vectors per iteration: the formulas are long dependency chains (exp, log,
    // reciprocal), and one vector alone leaves the FP pipes idle (sigmoid_focal_loss in L1: 1.30
    // -> 1.15 ns/element with two, about 5% less again with four). Their losses are added in float,
    // pairwise, before the one widening to double.
    constexpr int64_t L = V::lanes;
    int64_t i = i0;
    for (; i + 4 * L <= i1; i += 4 * L) {
      if constexpr (kPrefetch) {
        for (int64_t k = 0; k < 4 * L; k += 64 / int64_t(sizeof(T))) {  // one per cache line
          __builtin_prefetch(ahead(x + i + k));
          __builtin_prefetch(ahead(y + i + k));
        }
      }
      const V l0 = step(i, V());
      const V l1 = step(i + L, V());
      const V l2 = step(i + 2 * L, V());
      const V l3 = step(i + 3 * L, V());
      if (need_loss) widen_add(acc.v, (l0 + l1) + (l2 + l3));
    }
    vector_loop<V>(i, i1, [&](int64_t j, auto tag) {
      const auto l = step(j, tag);
      if (need_loss) widen_add(acc.get(tag), l);
    });
    if (stream) stream_fence();
    if constexpr (kCheck) flag_if(bad.sum());
    ws.partials[chunk] = hsum(acc.v) + acc.l.v;
  });
  double total = 0;
  if (need_loss)
    for (int64_t c = 0; c < plan.chunks; ++c) total += ws.partials[c];
  return total;
}

// The per-element vectors of a loss (_spec "broadcast_vector"): element i reads vector k at
// i % period, or the option's scalar where the caller gave none. The input-shaped case (period n)
// is a plain load; only a (C,) vector pays a modulo, and a vector that wraps around its end is
// assembled lane by lane (out of line: it is one step in C / lanes).
template <class S, int K> struct ElementVectors {
  enum Kind { kFill, kFull, kPeriodic };
  const S* p[K];
  int64_t period[K];
  S fill[K];
  Kind kind[K];
  explicit ElementVectors(const FlPointwiseArgs& a) {
    for (int k = 0; k < K; ++k) {
      p[k] = static_cast<const S*>(a.vectors[k]);
      period[k] = a.vector_period[k];
      fill[k] = S(broadcast_fill(a.loss_id, k, a.params));
      kind[k] = !p[k] ? kFill : period[k] == a.n ? kFull : kPeriodic;
    }
  }
  template <class W> __attribute__((always_inline)) W get(int k, int64_t i) const {
    if (kind[k] == kFill) return W(fill[k]);
    if (kind[k] == kFull) return W::load(p[k] + i);
    const int64_t j = i % period[k];
    if (j + W::lanes <= period[k]) return W::load(p[k] + j);
    return wrapped<W>(k, j);
  }
  template <class W> __attribute__((noinline)) W wrapped(int k, int64_t j) const {
    S lanes[W::lanes];
    for (int l = 0; l < W::lanes; ++l) {
      lanes[l] = p[k][j];
      if (++j == period[k]) j = 0;
    }
    return W::load(lanes);
  }
};

// A loss whose unit_grad(x, y) is its gradient divided by L::kGradFactor (mse_loss: 2 e would
// overflow before the scale): the factor goes into the gradient scale instead.
template <class L, class = void> struct HasGradFactor : std::false_type {};
template <class L> struct HasGradFactor<L, std::void_t<decltype(L::kGradFactor)>> : std::true_type {};

template <class L, class = void> struct VectorsOf { static constexpr int value = 0; };
template <class L> struct VectorsOf<L, std::void_t<decltype(L::kVectors)>> { static constexpr int value = L::kVectors; };

// f(x, y, i) -> LossGrad and gh(x, y, i) -> GradHess: the loss at element i (the *_grad_hess form
// when hess_out is set).
template <class V, class VD, class T, class Loss, class F, class GH>
inline double pointwise_run_with(const FlPointwiseArgs& a, const Workspace& ws, const Loss& loss, F&& f, GH&& gh) {
  if (a.hess_out)
    return pointwise_hess_loop<V, T>(a, ws, kPointChunk, gh, [&](auto y) { return loss.target_invalid(y); },
                                     Loss::kChecksTarget);
  if constexpr (Loss::kChecksTarget)
    return pointwise_loop<V, VD, T, Loss::kComputeBound>(a, ws, f, [&](auto y) { return loss.target_invalid(y); });
  else
    return pointwise_loop<V, VD, T, Loss::kComputeBound>(a, ws, f, AnyTarget());
}

template <class V, class VD, class T, class Loss> inline double pointwise_run_loss(const FlPointwiseArgs& a, const Workspace& ws) {
  using S = typename V::scalar;
  const Loss loss(a.params);
  constexpr int K = VectorsOf<Loss>::value;
  if constexpr (HasGradFactor<Loss>::value) {
    FlPointwiseArgs b = a;  // the *_grad_hess form calls grad_hess, which returns the whole gradient
    if (!a.hess_out) b.grad_scale = a.grad_scale * Loss::kGradFactor;
    return pointwise_run_with<V, VD, T>(b, ws, loss, [&](auto x, auto y, int64_t) { return loss.unit_grad(x, y); },
                                        [&](auto x, auto y, int64_t) { return loss.grad_hess(x, y); });
  } else if constexpr (K == 0) {
    return pointwise_run_with<V, VD, T>(a, ws, loss, [&](auto x, auto y, int64_t) { return loss(x, y); },
                                        [&](auto x, auto y, int64_t) { return loss.grad_hess(x, y); });
  } else {
    const ElementVectors<S, K> vectors(a);
    bool none_given = true;
    for (int k = 0; k < K; ++k) none_given = none_given && vectors.kind[k] == vectors.kFill;
    auto constants = [&](auto x) {
      std::array<decltype(x), K> v;
      for (int k = 0; k < K; ++k) v[k] = decltype(x)(vectors.fill[k]);
      return v;
    };
    auto loaded = [&](auto x, int64_t i) {
      std::array<decltype(x), K> v;
      for (int k = 0; k < K; ++k) v[k] = vectors.template get<decltype(x)>(k, i);
      return v;
    };
    if (none_given)  // the common call (no weights): constants, no per-step branches
      return pointwise_run_with<V, VD, T>(
          a, ws, loss, [&](auto x, auto y, int64_t) { return loss(x, y, constants(x).data()); },
          [&](auto x, auto y, int64_t) { return loss.grad_hess(x, y, constants(x).data()); });
    return pointwise_run_with<V, VD, T>(
        a, ws, loss, [&](auto x, auto y, int64_t i) { return loss(x, y, loaded(x, i).data()); },
        [&](auto x, auto y, int64_t i) { return loss.grad_hess(x, y, loaded(x, i).data()); });
  }
}

// One case per point-wise loss of _spec.py, generated: each calls the struct named after its loss
// (csrc/fastloss/losses/<name>.h), so a loss without its own math fails to compile, and
// -Werror=switch fails the build when a loss of the table is not handled here.
template <class V, class VD, class T> inline double pointwise_run(const FlPointwiseArgs& a, const Workspace& ws) {
  using S = typename V::scalar;
#define FL_CHECK_DOMAIN(name, checks) \
  static_assert(name<S>::kChecksTarget == bool(checks), #name ": the target domain check disagrees with _spec.py");
  FL_POINTWISE_TARGET_CHECKS(FL_CHECK_DOMAIN)
#undef FL_CHECK_DOMAIN
#define FL_CHECK_VECTORS(name, count) \
  static_assert(VectorsOf<name<S>>::value == count, #name ": the number of per-element vectors disagrees with _spec.py");
  FL_POINTWISE_VECTORS(FL_CHECK_VECTORS)
#undef FL_CHECK_VECTORS
  switch (static_cast<LossId>(a.loss_id)) {
#define FL_CASE(name) \
  case LOSS_##name: return pointwise_run_loss<V, VD, T, name<S>>(a, ws);
    FL_LOSSES_POINTWISE(FL_CASE)
#undef FL_CASE
#define FL_NOT_HERE(name) case LOSS_##name:
    FL_LOSSES_NOT_POINTWISE(FL_NOT_HERE)
#undef FL_NOT_HERE
    break;
  }
  return 0;  // not reached: fastloss_pointwise rejects the ids of other kinds first
}

FL_NAMESPACE_END
