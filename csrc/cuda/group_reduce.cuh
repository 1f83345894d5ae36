// Reductions over the G threads that share one row (G = a power of two up to 32, or a whole block).
//
// Determinism: each thread first accumulates its own elements in a fixed order; lanes are then
// combined by an xor butterfly, where both partners of every step compute the same commutative
// op on the same two values, so every lane ends with the bit-identical result; warps of a block
// are combined in warp order by every thread. The result never depends on timing.
#pragma once

namespace fastloss::cuda {

struct SumOp {
  template <class S> __device__ __forceinline__ S operator()(S a, S b) const { return a + b; }
};
struct MaxOp {  // a NaN can be dropped here; it still reaches the loss through exp(z - m)
  template <class S> __device__ __forceinline__ S operator()(S a, S b) const { return a > b ? a : b; }
};

template <int G, class S, class Op>
__device__ __forceinline__ S warp_allreduce(S v, Op op) {
#pragma unroll
  for (int k = G / 2; k > 0; k /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, k, G));
  return v;
}

// G == 0: the whole block shares the row; `scratch` holds at least 32 values of S and all threads
// of the block must call this (it synchronises the block twice).
template <int G, class S, class Op>
__device__ __forceinline__ S group_allreduce(S v, Op op, S* scratch) {
  if constexpr (G > 0) {
    return warp_allreduce<G>(v, op);
  } else {
    v = warp_allreduce<32>(v, op);
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();  // scratch may still be read by a previous reduction
    if (threadIdx.x % 32 == 0) scratch[warp] = v;
    __syncthreads();
    S r = scratch[0];
    for (int w = 1; w < warps; ++w) r = op(r, scratch[w]);
    return r;
  }
}

// (value, index) maximum where ties go to the smaller index: the first maximiser, as torch.max.
// A NaN is greater than every number (the first NaN wins), as the CPU kernels and the reference
// propagate a NaN score (csrc/cpu/hinge_kernel.h first_nan_of).
template <class S> struct ArgMax {
  S value;
  long long index;
};
template <class S> __device__ __forceinline__ bool argmax_before(S bv, long long bi, S av, long long ai) {
  const bool an = av != av, bn = bv != bv;
  if (an || bn) return bn && (!an || bi < ai);
  return bv > av || (bv == av && bi < ai);
}
template <class S> __device__ __forceinline__ ArgMax<S> argmax_combine(ArgMax<S> a, ArgMax<S> b) {
  return argmax_before(b.value, b.index, a.value, a.index) ? b : a;
}

template <int G, class S>
__device__ __forceinline__ ArgMax<S> group_argmax(ArgMax<S> v, ArgMax<S>* scratch) {
  auto shuffle_step = [&](int width) {
#pragma unroll
    for (int k = width / 2; k > 0; k /= 2) {
      ArgMax<S> o{__shfl_xor_sync(0xffffffffu, v.value, k, width),
                  __shfl_xor_sync(0xffffffffu, v.index, k, width)};
      v = argmax_combine(v, o);
    }
  };
  if constexpr (G > 0) {
    shuffle_step(G);
    return v;
  } else {
    shuffle_step(32);
    const int warp = threadIdx.x / 32, warps = blockDim.x / 32;
    __syncthreads();
    if (threadIdx.x % 32 == 0) scratch[warp] = v;
    __syncthreads();
    ArgMax<S> r = scratch[0];
    for (int w = 1; w < warps; ++w) r = argmax_combine(r, scratch[w]);
    return r;
  }
}

}  // namespace fastloss::cuda
