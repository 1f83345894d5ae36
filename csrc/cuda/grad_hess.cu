// The *_grad_hess form on CUDA: the gradient and the Hessian diagonal of the unreduced loss, both
// times the per-row / per-element scale (the sample weights), in one pass. No loss is summed.
//  - point-wise: a grid-stride loop over the elements through the loss struct's grad_hess(x, y).
//  - row-wise: one thread per row at stride `inner` (any class-axis layout), the row statistics
//    and finalize of row_job.cuh, then each element's gradient and second derivative (the Hessian
//    coefficients are csrc/fastloss/losses/*.h's, shared with the CPU kernels). A plain plan: the
//    row is read twice from global memory (L1/L2 for short rows); GBDT margins have few classes.
#include "dtype.cuh"
#include "fastloss_generated/pointwise_losses.h"
#include "launch.h"
#include "portable.cuh"
#include "row_job.cuh"
#include "scale_and_errors.cuh"

namespace fastloss::cuda {

template <int kLoss, class S> struct HessLossOf;
#define FL_MAP(name) \
  template <class S> struct HessLossOf<LOSS_##name, S> { using type = name<S>; };
FL_LOSSES_POINTWISE(FL_MAP)
#undef FL_MAP

template <class L, class = void> struct HessVectorsOf { static constexpr int value = 0; };
template <class L> struct HessVectorsOf<L, std::void_t<decltype(L::kVectors)>> {
  static constexpr int value = L::kVectors;
};

// grad_hess of element e, with its per-element vectors (i % period, or the option's scalar) as in
// pointwise.cu.
template <class L, class S>
__device__ __forceinline__ GradHess<S> element_grad_hess(const L& loss, const PointwiseArgs& a, long long e, S x, S y) {
  constexpr int K = HessVectorsOf<L>::value;
  if constexpr (K == 0) {
    return loss.grad_hess(x, y);
  } else {
    S v[K];
    for (int j = 0; j < K; ++j)
      v[j] = a.vectors[j] ? static_cast<const S*>(a.vectors[j])[e % a.vector_period[j]] : S(a.vector_fill[j]);
    return loss.grad_hess(x, y, static_cast<const S*>(v));
  }
}

template <class T, int kLoss>
__global__ void __launch_bounds__(256) pointwise_grad_hess_kernel(const PointwiseArgs a) {
  using S = math_t<T>;
  const typename HessLossOf<kLoss, S>::type loss(a.params);
  const S scale = S(grad_scale(a.scale));
  const T* x = static_cast<const T*>(a.x);
  const T* y = static_cast<const T*>(a.target);
  T* g = static_cast<T*>(a.grad);
  T* h = static_cast<T*>(a.hess);
  const S* rs = static_cast<const S*>(a.scale.row_scale);
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < a.n; i += (long long)gridDim.x * blockDim.x) {
    const S yv = to_math(y[i]);
    GradHess<S> r = element_grad_hess(loss, a, i, to_math(x[i]), yv);
    if (a.check_target && yv == yv &&
        (yv < S(a.target_lo) || yv > S(a.target_hi) || (a.target_integral && yv != S(::rint(double(yv)))))) {
      report_bad_target(a.errors, a.loss_id, i);
      r.grad = r.hess = S(NAN);
    }
    const S s = rs ? scale * rs[i] : scale;
    g[i] = from_math<T>(r.grad * s);
    h[i] = from_math<T>(r.hess * s);
  }
}

// The Hessian coefficients of a softmax-family row (SoftmaxRowHess), from the same statistics.
template <int kLoss, class S>
__device__ SoftmaxRowHess<S> softmax_row_hess(const RowConsts<S>& k, const RowInfo<S>& ri, const RowPartial<S>& p) {
  const SoftmaxRowStats<S> st = softmax_stats(p, ri.w_t);
  if constexpr (kLoss == LOSS_softmax_focal_loss) {
    return softmax_focal_hess(st, k.gamma, ri.scale);
  } else if constexpr (kLoss == LOSS_cross_entropy) {
    return cross_entropy_hess(st, k.ce, k.soft, ri.scale);
  } else {
    static_assert(kLoss < 0, "softmax_row_hess: a softmax-family loss without its Hessian (no fall-through)");
  }
}

template <class T, int kLoss>
__global__ void __launch_bounds__(256) rowwise_grad_hess_kernel(const RowwiseArgs a) {
  using S = math_t<T>;
  const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= a.outer * a.inner) return;
  const long long C = a.classes, o = row / a.inner, i = row % a.inner, base = o * C * a.inner + i, st = a.inner;
  const RowConsts<S> k(a, LossTag<kLoss>{});
  const RowInfo<S> ri = row_info<kLoss>(a, k, row);
  T* g = static_cast<T*>(a.grad) + base;
  T* h = static_cast<T*>(a.hess) + base;
  if (ri.skip || ri.bad) {
    if (ri.bad) report_bad_target(a.errors, a.loss_id, row);
    const T fill = from_math<T>(ri.bad ? S(NAN) : S(0));
    for (long long c = 0; c < C; ++c) g[c * st] = h[c * st] = fill;
    return;
  }
  const RowView<T> xv{static_cast<const T*>(a.x) + base, st};
  const RowView<T> yv{k.soft ? static_cast<const T*>(a.soft_target) + base : nullptr, st};
  S th, zt = S(0);
  if (ri.t >= 0) zt = kLoss == LOSS_multiclass_hinge_loss ? xv[ri.t] : k.z(xv[ri.t], th);
  const RowPartial<S> p = chunk_stats<kLoss, 1, T>(k, ri, xv, yv, 0, C, zt, 0, 1, nullptr);
  const RowCoef<S> r = finalize_row<kLoss>(k, ri, p);
  if constexpr (kLoss == LOSS_multiclass_hinge_loss) {
    S h_t = S(0), h_arg = S(0);
    if (k.weston_watkins) {
      for (long long c = 0; c < C; ++c)
        if (c != ri.t) h_t += weston_watkins_term_hess(xv[c], r.zt, k.hinge);
      h_t *= r.d;
    } else {
      h_t = h_arg = crammer_singer_hess(r.zt, p.m, ri.w_t, k.hinge, ri.scale);
    }
    for (long long c = 0; c < C; ++c) {
      const S x = xv[c];
      S hv = S(0);
      if (c == ri.t) hv = h_t;
      else if (k.weston_watkins) hv = r.d * weston_watkins_term_hess(x, r.zt, k.hinge);
      else if (c == r.arg) hv = h_arg;
      g[c * st] = from_math<T>(grad_element<kLoss>(k, ri, r, c, x, S(0)));
      h[c * st] = from_math<T>(hv);
    }
  } else {
    const SoftmaxRowHess<S> hr = softmax_row_hess<kLoss>(k, ri, p);
    for (long long c = 0; c < C; ++c) {
      const S x = xv[c], y = k.soft ? yv[c] : S(0);
      const S z = k.z(x, th);
      const S e = fl_exp(z - r.ms);
      S wq = S(0);
      if (kLoss == LOSS_cross_entropy && r.b != S(0)) {
        wq = k.w(c);
        if (k.soft) wq *= cross_entropy_soft_q(y, k.ce);
      }
      S gz = softmax_grad(e, wq, r.a, r.b);
      S hz = softmax_hess_z(e, hr.ha, hr.hb, hr.hg, hr.ir);
      if (c == ri.t) {
        gz -= r.t_coef;
        if (hr.t_special) hz = hr.ht;
      }
      if (k.cap > S(0)) {
        const S dz = softcap_dz_dx(th);
        hz = hz * dz * dz + gz * softcap_d2z_dx2(th, k.inv_cap);
        gz *= dz;
      }
      g[c * st] = from_math<T>(gz);
      h[c * st] = from_math<T>(hz);
    }
  }
}

template <class T> static cudaError_t launch_pointwise_grad_hess(const PointwiseArgs& a, cudaStream_t stream) {
  const long long want = (a.n + 255) / 256;
  const unsigned blocks = unsigned(want < 65536 ? (want > 0 ? want : 1) : 65536);
  switch (static_cast<LossId>(a.loss_id)) {
#define FL_LAUNCH(name) \
  case LOSS_##name: return launch_kernel(pointwise_grad_hess_kernel<T, LOSS_##name>, blocks, 256, 0, stream, a);
    FL_LOSSES_POINTWISE(FL_LAUNCH)
#undef FL_LAUNCH
#define FL_NOT_HERE(name) case LOSS_##name:
    FL_LOSSES_NOT_POINTWISE(FL_NOT_HERE)
#undef FL_NOT_HERE
    return cudaErrorInvalidValue;
  }
  return cudaErrorInvalidValue;
}

template <class T> static cudaError_t launch_rowwise_grad_hess(const RowwiseArgs& a, cudaStream_t stream) {
  const long long rows = a.outer * a.inner;
  const unsigned blocks = unsigned((rows + 255) / 256);
  switch (static_cast<LossId>(a.loss_id)) {
    case LOSS_cross_entropy:
      return launch_kernel(rowwise_grad_hess_kernel<T, LOSS_cross_entropy>, blocks, 256, 0, stream, a);
    case LOSS_softmax_focal_loss:
      return launch_kernel(rowwise_grad_hess_kernel<T, LOSS_softmax_focal_loss>, blocks, 256, 0, stream, a);
    case LOSS_multiclass_hinge_loss:
      return launch_kernel(rowwise_grad_hess_kernel<T, LOSS_multiclass_hinge_loss>, blocks, 256, 0, stream, a);
#define FL_NOT_HERE(name) case LOSS_##name:
    FL_LOSSES_POINTWISE(FL_NOT_HERE)
    FL_LOSSES_WITHOUT_NATIVE_HESS(FL_NOT_HERE)  // the front end computes theirs with the NumPy reference
#undef FL_NOT_HERE
    return cudaErrorInvalidValue;
  }
  return cudaErrorInvalidValue;
}

const char* run_grad_hess_pointwise(PointwiseArgs a, cudaStream_t stream) {
  if (a.n == 0) return nullptr;
  cudaError_t e = cudaErrorInvalidValue;
  switch (a.dtype) {
    case FL_FLOAT32: e = launch_pointwise_grad_hess<float>(a, stream); break;
    case FL_FLOAT64: e = launch_pointwise_grad_hess<double>(a, stream); break;
    case FL_FLOAT16: e = launch_pointwise_grad_hess<__half>(a, stream); break;
    case FL_BFLOAT16: e = launch_pointwise_grad_hess<__nv_bfloat16>(a, stream); break;
  }
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

const char* run_grad_hess_rowwise(RowwiseArgs a, cudaStream_t stream) {
  if (a.outer * a.inner == 0) return nullptr;
  cudaError_t e = cudaErrorInvalidValue;
  switch (a.dtype) {
    case FL_FLOAT32: e = launch_rowwise_grad_hess<float>(a, stream); break;
    case FL_FLOAT64: e = launch_rowwise_grad_hess<double>(a, stream); break;
    case FL_FLOAT16: e = launch_rowwise_grad_hess<__half>(a, stream); break;
    case FL_BFLOAT16: e = launch_rowwise_grad_hess<__nv_bfloat16>(a, stream); break;
  }
  return e == cudaSuccess ? nullptr : cudaGetErrorString(e);
}

}  // namespace fastloss::cuda
