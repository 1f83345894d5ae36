// Row-wise kernels (softmax family and multiclass hinge) and their launch plan, for one storage
// type T; rowwise_<dtype>.cu instantiates launch_rowwise<T>.
//
// Plans, by layout and row size (all fuse loss and gradient; none uses atomics):
//  - class axis last, row fits in shared memory: the row is read from HBM once into shared memory
//    (16-byte loads when aligned), the statistics and the gradient are computed from there and the
//    gradient is written with 16-byte stores. A warp per row for short rows (8 rows per block), a
//    whole block per row otherwise.
//  - class axis last, long rows on Hopper (sm_90, rows over 64 KiB, e.g. C = 32000 float32 or
//    128256): a thread-block cluster of up to 8 blocks per row, each holding one chunk in shared
//    memory; the chunks' partial log-sum-exp statistics are exchanged through distributed shared
//    memory and combined in chunk order, so the row is still read from HBM once.
//  - class axis last, rows that fit neither (pre-Hopper, or over 8 chunks of shared memory): the
//    row is split into 32 KiB chunks; one kernel reduces each chunk to its partial statistics, a
//    second combines a row's partials in chunk order and writes the chunk's gradient. That reads
//    the row twice (the second read often from L2).
//  - class axis not last ((outer, C, inner) with inner > 1), and rows of at most 16 classes: one
//    thread per row; for inner > 1 neighbouring threads take neighbouring `inner` positions so
//    every access is coalesced; the three passes over a row re-read it from global memory and hit
//    in L1/L2 for the class counts of dense prediction (tens to hundreds).
#pragma once

#include <cooperative_groups.h>

#include <algorithm>

#include "portable.cuh"
#include "row_job.cuh"
#include "rowwise_distill_emd.cuh"

namespace fastloss::cuda {

template <int G> __device__ __forceinline__ void group_sync() {
  if constexpr (G > 0) __syncwarp(); else __syncthreads();
}

template <class T>
__device__ __forceinline__ void copy_to_shared(T* dst, const T* src, long long len, bool vec, int lane, int lanes) {
  constexpr int V = Vec16<T>::kSize;
  if (vec) {
    for (long long v = lane; v < len / V; v += lanes)
      reinterpret_cast<Vec16<T>*>(dst)[v] = reinterpret_cast<const Vec16<T>*>(src)[v];
  } else {
    for (long long c = lane; c < len; c += lanes) dst[c] = src[c];
  }
}

// Ignored and bad rows: loss 0 / NaN, gradient row 0 / NaN, bad rows reported.
template <int kLoss, class T>
__device__ void write_skipped(const RowwiseArgs& a, const RowConsts<math_t<T>>& k, const RowInfo<math_t<T>>& ri,
                              long long row, T* grad, long long stride, long long c0, long long len, bool vec,
                              bool owns_loss, int lane, int lanes) {
  using S = math_t<T>;
  const S value = ri.bad ? S(NAN) : S(0);
  if (owns_loss && lane == 0) {
    if (ri.bad) report_bad_target(a.errors, a.loss_id, row);
    if (a.row_loss) static_cast<S*>(a.row_loss)[row] = value;
  }
  if (grad) write_grad<kLoss, T>(k, ri, RowCoef<S>{}, RowView<T>{}, RowView<T>{}, grad, stride, c0, len, vec,
                                 true, value, lane, lanes);
}

// Whole rows (class axis last) cached in shared memory; G lanes per row (G = 32) or a block (G = 0).
template <class T, int kLoss, int G>
__global__ void __launch_bounds__(1024) whole_row_kernel(const RowwiseArgs a, long long slot_elems, bool vec) {
  using S = math_t<T>;
  FL_DYNAMIC_SHARED(unsigned char, smem);
  FL_SHARED_ARRAY(ArgMax<S>, scratch, 32);
  const int lanes = G > 0 ? G : int(blockDim.x);
  const int lane = int(threadIdx.x) % lanes, slot = int(threadIdx.x) / lanes;
  const long long row = (long long)blockIdx.x * (blockDim.x / lanes) + slot;
  if (row >= a.outer) return;  // uniform over the row's lanes: a group is a whole warp or block
  const long long C = a.classes;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  T* grad = a.grad ? static_cast<T*>(a.grad) + row * C : nullptr;
  if (ri.skip || ri.bad) {
    write_skipped<kLoss, T>(a, k, ri, row, grad, 1, 0, C, vec, true, lane, lanes);
    return;
  }
  T* xs = reinterpret_cast<T*>(smem) + slot * slot_elems * (k.soft ? 2 : 1);
  T* ys = xs + slot_elems;
  copy_to_shared(xs, static_cast<const T*>(a.x) + row * C, C, vec, lane, lanes);
  if (k.soft) copy_to_shared(ys, static_cast<const T*>(a.soft_target) + row * C, C, vec, lane, lanes);
  group_sync<G>();
  S th, zt = S(0);
  if (ri.t >= 0) zt = kLoss == LOSS_multiclass_hinge_loss ? to_math(xs[ri.t]) : k.z(to_math(xs[ri.t]), th);
  const RowView<T> xv{xs, 1}, yv{ys, 1};
  const RowPartial<S> p = chunk_stats<kLoss, G, T>(k, ri, xv, yv, 0, C, zt, lane, lanes, scratch);
  const RowCoef<S> r = finalize_row<kLoss>(k, ri, p);
  if (a.row_loss && lane == 0) static_cast<S*>(a.row_loss)[row] = r.loss;
  if (grad) write_grad<kLoss, T>(k, ri, r, xv, yv, grad, 1, 0, C, vec, false, S(0), lane, lanes);
}

// One thread per row of the (outer, C, inner) array (class axis not last, or very short rows).
template <class T, int kLoss>
__global__ void __launch_bounds__(256) strided_row_kernel(const RowwiseArgs a) {
  using S = math_t<T>;
  const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= a.outer * a.inner) return;
  const long long C = a.classes, o = row / a.inner, i = row % a.inner, base = o * C * a.inner + i;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  T* grad = a.grad ? static_cast<T*>(a.grad) + base : nullptr;
  if (ri.skip || ri.bad) {
    write_skipped<kLoss, T>(a, k, ri, row, grad, a.inner, 0, C, false, true, 0, 1);
    return;
  }
  const RowView<T> xv{static_cast<const T*>(a.x) + base, a.inner};
  const RowView<T> yv{k.soft ? static_cast<const T*>(a.soft_target) + base : nullptr, a.inner};
  S th, zt = S(0);
  if (ri.t >= 0) zt = kLoss == LOSS_multiclass_hinge_loss ? xv[ri.t] : k.z(xv[ri.t], th);
  const RowPartial<S> p = chunk_stats<kLoss, 1, T>(k, ri, xv, yv, 0, C, zt, 0, 1, nullptr);
  const RowCoef<S> r = finalize_row<kLoss>(k, ri, p);
  if (a.row_loss) static_cast<S*>(a.row_loss)[row] = r.loss;
  if (grad) write_grad<kLoss, T>(k, ri, r, xv, yv, grad, a.inner, 0, C, false, false, S(0), 0, 1);
}

// Long rows, pass 1: block b = row * chunks + chunk reduces its chunk to partial statistics.
template <class T, int kLoss>
__global__ void __launch_bounds__(512) split_stats_kernel(const RowwiseArgs a, long long chunk, int chunks, bool vec,
                                                          RowPartial<math_t<T>>* parts) {
  using S = math_t<T>;
  FL_DYNAMIC_SHARED(unsigned char, smem);
  FL_SHARED_ARRAY(ArgMax<S>, scratch, 32);
  const long long row = blockIdx.x / chunks, c0 = (blockIdx.x % chunks) * chunk;
  const long long C = a.classes, len = C - c0 < chunk ? C - c0 : chunk;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  if (ri.skip || ri.bad) return;
  T* xs = reinterpret_cast<T*>(smem);
  T* ys = xs + chunk;
  copy_to_shared(xs, static_cast<const T*>(a.x) + row * C + c0, len, vec, threadIdx.x, blockDim.x);
  if (k.soft) copy_to_shared(ys, static_cast<const T*>(a.soft_target) + row * C + c0, len, vec, threadIdx.x, blockDim.x);
  __syncthreads();
  S th, zt = S(0);
  if (ri.t >= 0) {  // no gradient is written before pass 2, so x_t is still the input here
    const S xt = to_math(static_cast<const T*>(a.x)[row * C + ri.t]);
    zt = kLoss == LOSS_multiclass_hinge_loss ? xt : k.z(xt, th);
  }
  const RowPartial<S> p = chunk_stats<kLoss, 0, T>(k, ri, RowView<T>{xs, 1}, RowView<T>{ys, 1}, c0, len, zt,
                                                   threadIdx.x, blockDim.x, scratch);
  if (threadIdx.x == 0) parts[blockIdx.x] = p;
}

// Long rows, pass 2: combine the row's partials in chunk order, then write the chunk's gradient.
template <class T, int kLoss>
__global__ void __launch_bounds__(512) split_grad_kernel(const RowwiseArgs a, long long chunk, int chunks, bool vec,
                                                         const RowPartial<math_t<T>>* parts) {
  using S = math_t<T>;
  const long long row = blockIdx.x / chunks, c0 = (blockIdx.x % chunks) * chunk;
  const long long C = a.classes, len = C - c0 < chunk ? C - c0 : chunk;
  const bool owns_loss = blockIdx.x % chunks == 0;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  T* grad = a.grad ? static_cast<T*>(a.grad) + row * C + c0 : nullptr;
  if (ri.skip || ri.bad) {
    write_skipped<kLoss, T>(a, k, ri, row, grad, 1, c0, len, vec, owns_loss, threadIdx.x, blockDim.x);
    return;
  }
  const RowPartial<S>* rp = parts + row * chunks;
  RowPartial<S> p = rp[0];
  for (int j = 1; j < chunks; ++j)
    p = kLoss == LOSS_multiclass_hinge_loss ? combine_hinge(p, rp[j], k.weston_watkins) : combine_softmax(p, rp[j]);
  const RowCoef<S> r = finalize_row<kLoss>(k, ri, p);
  if (owns_loss && threadIdx.x == 0 && a.row_loss) static_cast<S*>(a.row_loss)[row] = r.loss;
  if (grad) {
    const RowView<T> xv{static_cast<const T*>(a.x) + row * C + c0, 1};
    const RowView<T> yv{k.soft ? static_cast<const T*>(a.soft_target) + row * C + c0 : nullptr, 1};
    write_grad<kLoss, T>(k, ri, r, xv, yv, grad, 1, c0, len, vec, false, S(0), threadIdx.x, blockDim.x);
  }
}

// Long rows on Hopper: the cluster's blocks are the row's chunks (block rank = chunk index).
template <class T, int kLoss>
__global__ void __launch_bounds__(512) cluster_row_kernel(const RowwiseArgs a, long long chunk, int chunks, bool vec) {
#if (defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900) || defined(FASTLOSS_CUDA_EMULATOR)
  namespace cg = cooperative_groups;
  using S = math_t<T>;
  FL_DYNAMIC_SHARED(unsigned char, smem);
  FL_SHARED_ARRAY(ArgMax<S>, scratch, 32);
  FL_SHARED_VAR(RowPartial<S>, partial);
  cg::cluster_group cluster = cg::this_cluster();
  const long long row = blockIdx.x / chunks, c0 = (long long)cluster.block_rank() * chunk;
  const long long C = a.classes, len = C - c0 < chunk ? C - c0 : chunk;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  T* grad = a.grad ? static_cast<T*>(a.grad) + row * C + c0 : nullptr;
  if (ri.skip || ri.bad) {  // the same for every block of the cluster: none reaches cluster.sync
    write_skipped<kLoss, T>(a, k, ri, row, grad, 1, c0, len, vec, c0 == 0, threadIdx.x, blockDim.x);
    return;
  }
  T* xs = reinterpret_cast<T*>(smem);
  T* ys = xs + chunk;
  copy_to_shared(xs, static_cast<const T*>(a.x) + row * C + c0, len, vec, threadIdx.x, blockDim.x);
  if (k.soft) copy_to_shared(ys, static_cast<const T*>(a.soft_target) + row * C + c0, len, vec, threadIdx.x, blockDim.x);
  __syncthreads();
  S th, zt = S(0);
  if (ri.t >= 0) {  // no block of the row writes its gradient before the cluster barrier below
    const S xt = to_math(static_cast<const T*>(a.x)[row * C + ri.t]);
    zt = kLoss == LOSS_multiclass_hinge_loss ? xt : k.z(xt, th);
  }
  const RowView<T> xv{xs, 1}, yv{ys, 1};
  const RowPartial<S> mine = chunk_stats<kLoss, 0, T>(k, ri, xv, yv, c0, len, zt, threadIdx.x, blockDim.x, scratch);
  if (threadIdx.x == 0) partial = mine;
  cluster.sync();
  RowPartial<S> p = *cluster.map_shared_rank(&partial, 0);
  for (int j = 1; j < chunks; ++j) {
    const RowPartial<S> other = *cluster.map_shared_rank(&partial, j);
    p = kLoss == LOSS_multiclass_hinge_loss ? combine_hinge(p, other, k.weston_watkins) : combine_softmax(p, other);
  }
  cluster.sync();  // no block may exit while another still reads its shared memory
  const RowCoef<S> r = finalize_row<kLoss>(k, ri, p);
  if (c0 == 0 && threadIdx.x == 0 && a.row_loss) static_cast<S*>(a.row_loss)[row] = r.loss;
  if (grad) write_grad<kLoss, T>(k, ri, r, xv, yv, grad, 1, c0, len, vec, false, S(0), threadIdx.x, blockDim.x);
#else
  __trap();  // the host launches this only where sm_90 code was compiled in (cluster_plan_usable)
#endif
}

template <class Kernel>
cudaError_t allow_shared(Kernel kernel, size_t bytes) {
  if (bytes <= 48 * 1024) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
}

inline int pow2_at_least(long long v) {
  int p = 1;
  while (p < v && p < (1 << 30)) p *= 2;
  return p;
}

constexpr int kMaxClusterBlocks = 8;  // the portable cluster size

// Launches the cluster plan if this device and binary can run it; false: use another plan.
template <class T, int kLoss>
bool launch_cluster(const RowwiseArgs& a, long long chunk, int chunks, bool vec, size_t bytes, cudaStream_t stream) {
  auto kernel = cluster_row_kernel<T, kLoss>;
  cudaFuncAttributes attr{};
  if (cudaFuncGetAttributes(&attr, kernel) != cudaSuccess || attr.binaryVersion < 90 ||
      allow_shared(kernel, bytes) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = unsigned(chunks);
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(unsigned(a.outer * chunks));
  cfg.blockDim = dim3(512);
  cfg.dynamicSmemBytes = bytes;
  cfg.stream = stream;
  cfg.attrs = &cluster;
  cfg.numAttrs = 1;
  // A cluster that cannot be placed (too much shared memory per GPC) fails here, synchronously.
  return cudaLaunchKernelEx(&cfg, kernel, a, chunk, chunks, vec) == cudaSuccess;
}

template <class T, int kLoss>
cudaError_t launch_rowwise_loss(const RowwiseArgs& a, cudaStream_t stream) {
  using S = math_t<T>;
  constexpr int V = Vec16<T>::kSize;
  const long long rows = a.outer * a.inner, C = a.classes;
  if (rows == 0) return cudaSuccess;
  // Very short rows also take one thread per row: a warp per row of a few elements would keep too
  // few bytes in flight, while the threads of a block read neighbouring rows whose cache lines are
  // shared, so each line still comes from HBM once (chosen by reasoning, not yet timed on a GPU).
  constexpr long long kThreadPerRowMaxClasses = 16;
  if (a.inner > 1 || C <= kThreadPerRowMaxClasses) {
    return launch_kernel(strided_row_kernel<T, kLoss>, unsigned((rows + 255) / 256), 256, 0, stream, a);
  }
  const bool soft = a.soft_target != nullptr;
  const bool vec = C % V == 0 && aligned16(a.x) && (!soft || aligned16(a.soft_target)) &&
                   (a.grad == nullptr || aligned16(a.grad));
  const int arrays = soft ? 2 : 1;
  const long long slot = (C + V - 1) / V * V, vectors = slot / V;
  const size_t row_bytes = size_t(slot) * sizeof(T) * arrays;
  int device = 0, optin = 48 * 1024;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  const size_t budget = size_t(optin) - 1024;  // leaves room for the static reduction scratch

  if (vectors <= 64) {  // a warp per row, 8 rows per block
    constexpr int kRowsPerBlock = 8;
    const size_t bytes = row_bytes * kRowsPerBlock;
    auto kernel = whole_row_kernel<T, kLoss, 32>;
    if (cudaError_t e = allow_shared(kernel, bytes)) return e;
    return launch_kernel(kernel, unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock), 32 * kRowsPerBlock, bytes,
                         stream, a, slot, vec);
  }
  int major = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (a.allow_cluster && major >= 9 && row_bytes > 64 * 1024) {
    const long long parts = std::min<long long>(kMaxClusterBlocks, (row_bytes + 48 * 1024 - 1) / (48 * 1024));
    const long long chunk = ((C + parts - 1) / parts + V - 1) / V * V;
    const int chunks = int((C + chunk - 1) / chunk);
    const size_t bytes = size_t(chunk) * sizeof(T) * arrays;
    if (bytes <= budget && launch_cluster<T, kLoss>(a, chunk, chunks, vec, bytes, stream)) return cudaSuccess;
    cudaGetLastError();
  }
  if (row_bytes <= budget) {  // a block per row
    const int threads = std::min(1024, std::max(128, pow2_at_least((vectors + 1) / 2)));
    auto kernel = whole_row_kernel<T, kLoss, 0>;
    if (cudaError_t e = allow_shared(kernel, row_bytes)) return e;
    return launch_kernel(kernel, unsigned(rows), threads, row_bytes, stream, a, slot, vec);
  }
  // Split rows: 32 KiB chunks keep several blocks per multiprocessor.
  const long long chunk = std::max<long long>(V, (32 * 1024 / (long long)(sizeof(T) * arrays)) / V * V);
  const int chunks = int((C + chunk - 1) / chunk);
  const size_t chunk_bytes = size_t(chunk) * sizeof(T) * arrays;
  RowPartial<S>* parts = nullptr;
  if (cudaError_t e = cudaMallocAsync(&parts, sizeof(RowPartial<S>) * size_t(rows) * chunks, stream)) return e;
  auto stats = split_stats_kernel<T, kLoss>;
  if (cudaError_t e = allow_shared(stats, chunk_bytes)) return e;
  const unsigned blocks = unsigned(rows * chunks);
  cudaError_t launched = launch_kernel(stats, blocks, 512, chunk_bytes, stream, a, chunk, chunks, vec, parts);
  if (launched == cudaSuccess)
    launched = launch_kernel(split_grad_kernel<T, kLoss>, blocks, 512, 0, stream, a, chunk, chunks, vec,
                             static_cast<const RowPartial<S>*>(parts));
  cudaError_t freed = cudaFreeAsync(parts, stream);
  return launched != cudaSuccess ? launched : freed;
}

template <class T> cudaError_t launch_rowwise(const RowwiseArgs& a, cudaStream_t stream) {
  switch (static_cast<LossId>(a.loss_id)) {
    case LOSS_cross_entropy: return launch_rowwise_loss<T, LOSS_cross_entropy>(a, stream);
    case LOSS_softmax_focal_loss: return launch_rowwise_loss<T, LOSS_softmax_focal_loss>(a, stream);
    case LOSS_multiclass_hinge_loss: return launch_rowwise_loss<T, LOSS_multiclass_hinge_loss>(a, stream);
    case LOSS_softmax_kl_div: return launch_distill<T>(a, stream);
    case LOSS_wasserstein_loss: return launch_wasserstein<T>(a, stream);
#define FL_NOT_ROWWISE(name) case LOSS_##name:
    FL_LOSSES_POINTWISE(FL_NOT_ROWWISE)
#undef FL_NOT_ROWWISE
      return cudaErrorInvalidValue;
  }
  return cudaErrorInvalidValue;
}

}  // namespace fastloss::cuda
