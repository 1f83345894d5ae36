// run_rowwise: the device-side "mean" denominator (when it depends on the targets), the row-wise
// kernels, and the ordered reduction of the row losses, all enqueued on the caller's stream.
#include "dtype.cuh"
#include "launch.h"
#include "ordered_sum.cuh"
#include "portable.cuh"

namespace fastloss::cuda {

namespace {

// The weight a row contributes to PyTorch's "mean": w_t (or 1) unless ignored; out-of-range
// targets contribute nothing here (their loss is NaN and they are reported by the kernel).
template <class S> struct TargetWeight {
  const long long* target;
  const S* weight;
  long long ignore_index;
  long long classes;
  __device__ double operator()(long long i) const {
    const long long t = target[i];
    if (t == ignore_index || t < 0 || t >= classes) return 0.0;
    return weight ? double(weight[t]) : 1.0;
  }
};

template <class S> struct Values {
  const S* v;
  __device__ double operator()(long long i) const { return double(v[i]); }
};

template <class F> cudaError_t ordered_sum(F value, long long n, double* partials, const double* device_den,
                                           double host_den, void* out, bool out_double, cudaStream_t stream) {
  if (n <= kSmallSum) {
    return out_double ? launch_kernel(small_sum_kernel<F, double>, 1, kSmallSumThreads, 0, stream, value, n,
                                      device_den, host_den, static_cast<double*>(out))
                      : launch_kernel(small_sum_kernel<F, float>, 1, kSmallSumThreads, 0, stream, value, n,
                                      device_den, host_den, static_cast<float*>(out));
  }
  const long long segments = sum_segments(n);
  if (segments > 0) {
    if (cudaError_t e = launch_kernel(segment_sum_kernel<F>, unsigned(segments), kSumThreads, 0, stream, value, n,
                                      partials))
      return e;
  }
  return out_double ? launch_kernel(finish_sum_kernel<double>, 1, kSumThreads, 0, stream, partials, segments,
                                    device_den, host_den, static_cast<double*>(out))
                    : launch_kernel(finish_sum_kernel<float>, 1, kSumThreads, 0, stream, partials, segments,
                                    device_den, host_den, static_cast<float*>(out));
}

template <class S> cudaError_t run(RowwiseArgs a, const Reduction& red, char* ws, cudaStream_t stream) {
  const long long rows = a.outer * a.inner;
  double* denominator = reinterpret_cast<double*>(ws);
  double* partials = denominator + 1;
  S* row_loss = reinterpret_cast<S*>(partials + sum_segments(rows) + 1);
  const bool reduce = red.kind != 0 && red.total != nullptr;
  const bool device_den = red.kind == 2 && red.device_denominator != 0 && a.target != nullptr;
  if (device_den) {
    const S* weight = red.device_denominator == 2 ? static_cast<const S*>(a.class_weight) : nullptr;
    TargetWeight<S> w{a.target, weight, a.params.ignore_index, a.classes};
    if (cudaError_t e = ordered_sum(w, rows, partials, nullptr, 1.0, denominator, true, stream)) return e;
    a.scale.denominator = denominator;
  }
  if (reduce) a.row_loss = row_loss;
  cudaError_t e = cudaErrorInvalidValue;
  switch (a.dtype) {
    case FL_FLOAT32: e = launch_rowwise<float>(a, stream); break;
    case FL_FLOAT64: e = launch_rowwise<double>(a, stream); break;
    case FL_FLOAT16: e = launch_rowwise<__half>(a, stream); break;
    case FL_BFLOAT16: e = launch_rowwise<__nv_bfloat16>(a, stream); break;
  }
  if (e != cudaSuccess || !reduce) return e;
  const double host_den = red.kind == 2 ? red.host_denominator : 1.0;
  return ordered_sum(Values<S>{row_loss}, rows, partials, device_den ? denominator : nullptr, host_den, red.total,
                     sizeof(S) == 8, stream);
}

}  // namespace

const char* run_rowwise(RowwiseArgs a, Reduction red, cudaStream_t stream) {
  const long long rows = a.outer * a.inner;
  const size_t math_size = a.dtype == FL_FLOAT64 ? 8 : 4;
  const size_t bytes = sizeof(double) * size_t(sum_segments(rows) + 2) + math_size * size_t(rows);
  char* ws = nullptr;
  if (cudaError_t e = cudaMallocAsync(&ws, bytes, stream)) return cudaGetErrorString(e);
  cudaError_t e = a.dtype == FL_FLOAT64 ? run<double>(a, red, ws, stream) : run<float>(a, red, ws, stream);
  cudaError_t freed = cudaFreeAsync(ws, stream);
  if (e == cudaSuccess) e = freed;
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace fastloss::cuda
