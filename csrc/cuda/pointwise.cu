// Point-wise losses (sigmoid focal, binary hinge, huber, smooth L1): one fused pass reading input
// and target and writing the gradient (16-byte accesses when aligned), with per-block loss sums
// for "mean"/"sum" over fixed segments (deterministic, no atomics).
#include <type_traits>

#include "dtype.cuh"
#include "fastloss_generated/pointwise_losses.h"
#include "launch.h"
#include "ordered_sum.cuh"
#include "pointwise.cuh"
#include "portable.cuh"
#include "scale_and_errors.cuh"

namespace fastloss::cuda {

// The struct of each point-wise loss of _spec.py (csrc/fastloss/losses/<name>.h), by loss id.
template <int kLoss, class S> struct PointwiseLossOf;
#define FL_MAP(name) \
  template <class S> struct PointwiseLossOf<LOSS_##name, S> { using type = name<S>; };
FL_LOSSES_POINTWISE(FL_MAP)
#undef FL_MAP
template <int kLoss, class S> using PointwiseConsts = typename PointwiseLossOf<kLoss, S>::type;

template <class L, class = void> struct VectorsOf { static constexpr int value = 0; };
template <class L> struct VectorsOf<L, std::void_t<decltype(L::kVectors)>> { static constexpr int value = L::kVectors; };

// A loss whose unit_grad(x, y) is its gradient divided by L::kGradFactor (mse_loss: 2 e overflows
// for |e| > max / 2 where the scaled gradient does not): the factor goes into the gradient scale,
// as in the CPU kernels (csrc/cpu/pointwise_kernel.h).
template <class L, class = void> struct GradFactorOf { static constexpr double value = 1.0; };
template <class L> struct GradFactorOf<L, std::void_t<decltype(L::kGradFactor)>> {
  static constexpr double value = L::kGradFactor;
};

// The loss at one element (its gradient divided by GradFactorOf<L>): with its per-element vectors
// (i % period, or the option's scalar).
template <class L, class S>
__device__ __forceinline__ LossGrad<S> loss_at(const PointwiseArgs& a, const L& k, long long e, S x, S y) {
  constexpr int K = VectorsOf<L>::value;
  if constexpr (GradFactorOf<L>::value != 1.0) {
    static_assert(K == 0, "a loss with per-element vectors has no unit_grad");
    return k.unit_grad(x, y);
  } else if constexpr (K == 0) {
    return k(x, y);
  } else {
    S v[K];
#pragma unroll
    for (int j = 0; j < K; ++j)
      v[j] = a.vectors[j] ? static_cast<const S*>(a.vectors[j])[e % a.vector_period[j]]
                          : S(a.vector_fill[j]);
    return k(x, y, static_cast<const S*>(v));
  }
}

template <class S>
__device__ __forceinline__ bool bad_target(const PointwiseArgs& a, S y) {
  if (!a.check_target || y != y) return false;
  return y < S(a.target_lo) || y > S(a.target_hi) || (a.target_integral && y != S(::rint(double(y))));
}

// Element e: loss and gradient, the domain check, "none" outputs; returns the loss for the sum.
template <int kLoss, class T>
__device__ __forceinline__ math_t<T> pointwise_element(const PointwiseArgs& a, const PointwiseConsts<kLoss, math_t<T>>& k,
                                                       math_t<T> scale, long long e, math_t<T> x, math_t<T> y,
                                                       T& g_out) {
  using S = math_t<T>;
  LossGrad<S> r = loss_at(a, k, e, x, y);
  if (bad_target(a, y)) {
    report_bad_target(a.errors, a.loss_id, e);
    r.loss = r.grad = S(NAN);
  }
  S s = scale;
  if (a.scale.row_scale) s *= static_cast<const S*>(a.scale.row_scale)[e];
  g_out = from_math<T>(r.grad * s);
  if (a.elem_loss) static_cast<S*>(a.elem_loss)[e] = r.loss;
  return r.loss;
}

template <class T, int kLoss>
__global__ void __launch_bounds__(kPointwiseThreads) pointwise_kernel(const PointwiseArgs a, bool vec, double* partials) {
  using S = math_t<T>;
  constexpr int V = Vec16<T>::kSize;
  constexpr long long kSegment = pointwise_segment<T>();
  const PointwiseConsts<kLoss, S> k(a.params);
  using L = PointwiseConsts<kLoss, S>;
  const S scale = S(grad_scale(a.scale) * GradFactorOf<L>::value);
  const long long start = (long long)blockIdx.x * kSegment;
  const long long len = a.n - start < kSegment ? a.n - start : kSegment;
  const T* x = static_cast<const T*>(a.x) + start;
  const T* y = static_cast<const T*>(a.target) + start;
  T* grad = a.grad ? static_cast<T*>(a.grad) + start : nullptr;
  S acc = S(0);
  long long done = 0;
  if (vec && len == kSegment) {
    // A whole segment: all of this thread's loads are issued before any math, so several 16-byte
    // requests are in flight per thread. In place (grad == x) is safe: a thread writes only the
    // elements it has already read.
    constexpr int kPerThread = int(kSegment / (kPointwiseThreads * V));
    Vec16<T> xv[kPerThread], yv[kPerThread];
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      xv[u] = reinterpret_cast<const Vec16<T>*>(x)[threadIdx.x + u * kPointwiseThreads];
      yv[u] = reinterpret_cast<const Vec16<T>*>(y)[threadIdx.x + u * kPointwiseThreads];
    }
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const long long v = threadIdx.x + u * kPointwiseThreads;
      Vec16<T> gv;
#pragma unroll
      for (int j = 0; j < V; ++j)
        acc += pointwise_element<kLoss, T>(a, k, scale, start + v * V + j, to_math(xv[u].v[j]), to_math(yv[u].v[j]),
                                           gv.v[j]);
      if (grad) reinterpret_cast<Vec16<T>*>(grad)[v] = gv;
    }
    done = len;
  } else if (vec) {
    done = len / V * V;
    for (long long v = threadIdx.x; v < len / V; v += kPointwiseThreads) {
      const Vec16<T> xv = reinterpret_cast<const Vec16<T>*>(x)[v];
      const Vec16<T> yv = reinterpret_cast<const Vec16<T>*>(y)[v];
      Vec16<T> gv;
#pragma unroll
      for (int j = 0; j < V; ++j)
        acc += pointwise_element<kLoss, T>(a, k, scale, start + v * V + j, to_math(xv.v[j]), to_math(yv.v[j]), gv.v[j]);
      if (grad) reinterpret_cast<Vec16<T>*>(grad)[v] = gv;
    }
  }
  for (long long i = done + threadIdx.x; i < len; i += kPointwiseThreads) {
    T g;
    acc += pointwise_element<kLoss, T>(a, k, scale, start + i, to_math(x[i]), to_math(y[i]), g);
    if (grad) grad[i] = g;
  }
  if (partials) {
    const double total = block_sum(double(acc));
    if (threadIdx.x == 0) partials[blockIdx.x] = total;
  }
}

template <class T>
cudaError_t launch_pointwise_typed(const PointwiseArgs& a, double* partials, cudaStream_t stream) {
  const bool vec = aligned16(a.x) && aligned16(a.target) && (a.grad == nullptr || aligned16(a.grad));
  const unsigned blocks = unsigned(pointwise_blocks<T>(a.n));
  switch (static_cast<LossId>(a.loss_id)) {
#define FASTLOSS_LAUNCH(name) \
  case LOSS_##name: return launch_kernel(pointwise_kernel<T, LOSS_##name>, blocks, kPointwiseThreads, 0, stream, a, vec, partials);
    FL_LOSSES_POINTWISE(FASTLOSS_LAUNCH)
#undef FASTLOSS_LAUNCH
#define FL_NOT_POINTWISE(name) case LOSS_##name:
    FL_LOSSES_NOT_POINTWISE(FL_NOT_POINTWISE)
#undef FL_NOT_POINTWISE
      return cudaErrorInvalidValue;
  }
  return cudaErrorInvalidValue;
}

static cudaError_t launch_pointwise(const PointwiseArgs& a, double* partials, cudaStream_t stream) {
  if (a.n == 0) return cudaSuccess;
  switch (a.dtype) {
    case FL_FLOAT32: return launch_pointwise_typed<float>(a, partials, stream);
    case FL_FLOAT64: return launch_pointwise_typed<double>(a, partials, stream);
    case FL_FLOAT16: return launch_pointwise_typed<__half>(a, partials, stream);
    case FL_BFLOAT16: return launch_pointwise_typed<__nv_bfloat16>(a, partials, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace fastloss::cuda

namespace fastloss::cuda {

static long long pointwise_block_count(DType dtype, long long n) {
  switch (dtype) {
    case FL_FLOAT64: return pointwise_blocks<double>(n);
    case FL_FLOAT16: case FL_BFLOAT16: return pointwise_blocks<__half>(n);
    default: return pointwise_blocks<float>(n);
  }
}

const char* run_pointwise(PointwiseArgs a, Reduction red, cudaStream_t stream) {
  const bool reduce = red.kind != 0 && red.total != nullptr;
  const long long blocks = pointwise_block_count(a.dtype, a.n);
  double* partials = nullptr;
  if (reduce) {
    if (cudaError_t e = cudaMallocAsync(&partials, sizeof(double) * size_t(blocks > 0 ? blocks : 1), stream))
      return cudaGetErrorString(e);
  }
  cudaError_t e = launch_pointwise(a, partials, stream);
  if (reduce) {
    const double denominator = red.kind == 2 ? red.host_denominator : 1.0;
    if (e == cudaSuccess) {
      e = a.dtype == FL_FLOAT64
              ? launch_kernel(finish_sum_kernel<double>, 1, kSumThreads, 0, stream, partials, blocks, nullptr,
                              denominator, static_cast<double*>(red.total))
              : launch_kernel(finish_sum_kernel<float>, 1, kSumThreads, 0, stream, partials, blocks, nullptr,
                              denominator, static_cast<float*>(red.total));
    }
    cudaError_t freed = cudaFreeAsync(partials, stream);
    if (e == cudaSuccess) e = freed;
  }
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace fastloss::cuda
