// Deterministic sums without atomics: every block sums a fixed segment of the values in a fixed
// order and writes one double; a one-block kernel then sums those partials in order. Segment sizes
// are constants, never derived from the GPU, so a result is the same on every device and run.
#pragma once

#include "group_reduce.cuh"
#include "portable.cuh"

namespace fastloss::cuda {

constexpr int kSumThreads = 256;
constexpr int kSumSegment = kSumThreads * 16;  // values per block of the first level

// Sum over the block of one double per thread; every thread gets the same result.
__device__ __forceinline__ double block_sum(double v) {
  FL_SHARED_ARRAY(double, scratch, 32);
  return group_allreduce<0>(v, SumOp{}, scratch);
}

// partials[b] = sum of value(i) for i in segment b; value is a device functor of the flat index.
template <class F>
__global__ void __launch_bounds__(kSumThreads) segment_sum_kernel(F value, long long n, double* partials) {
  const long long start = (long long)blockIdx.x * kSumSegment;
  double acc = 0;
  for (long long i = start + threadIdx.x; i < n && i < start + kSumSegment; i += kSumThreads) acc += value(i);
  acc = block_sum(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// The final level: out = (sum of partials) / denominator, stored as Out (float, double).
// The denominator is *device_denominator when given, else host_denominator.
template <class Out>
__global__ void __launch_bounds__(kSumThreads) finish_sum_kernel(const double* partials, long long n,
                                                                 const double* device_denominator,
                                                                 double host_denominator, Out* out) {
  double acc = 0;
  for (long long i = threadIdx.x; i < n; i += kSumThreads) acc += partials[i];
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = Out(acc / (device_denominator ? *device_denominator : host_denominator));
}

inline long long sum_segments(long long n) { return (n + kSumSegment - 1) / kSumSegment; }

// Up to kSmallSum values (e.g. the row losses of an LLM batch) one block sums them all, in one
// launch instead of two; the partition is again fixed, so the result is too.
constexpr int kSmallSumThreads = 1024;
constexpr long long kSmallSum = 1 << 16;

template <class F, class Out>
__global__ void __launch_bounds__(kSmallSumThreads) small_sum_kernel(F value, long long n,
                                                                     const double* device_denominator,
                                                                     double host_denominator, Out* out) {
  double acc = 0;
  for (long long i = threadIdx.x; i < n; i += kSmallSumThreads) acc += value(i);
  acc = block_sum(acc);
  if (threadIdx.x == 0) *out = Out(acc / (device_denominator ? *device_denominator : host_denominator));
}

}  // namespace fastloss::cuda
