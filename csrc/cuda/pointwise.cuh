// The fixed partition of point-wise work: a block owns a constant number of elements, so the
// per-block loss sums (and hence "mean"/"sum") do not depend on the GPU. Shared by the kernel and
// by the host code that sizes the partial-sum buffer.
#pragma once

#include "dtype.cuh"

namespace fastloss::cuda {

constexpr int kPointwiseThreads = 256;
template <class T> constexpr long long pointwise_segment() { return kPointwiseThreads * 4LL * Vec16<T>::kSize; }
template <class T> inline long long pointwise_blocks(long long n) {
  return (n + pointwise_segment<T>() - 1) / pointwise_segment<T>();
}

}  // namespace fastloss::cuda
