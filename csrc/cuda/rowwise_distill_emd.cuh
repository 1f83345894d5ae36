// Row-wise CUDA kernels of softmax_kl_div and wasserstein_loss (formulas and stability notes in
// csrc/fastloss/losses/softmax_kl_div.h and wasserstein_loss.h, shared with the CPU kernels).
//
// Plans (every one fuses loss and gradient; none uses atomics; in place over x is safe because
// each thread reads an element's inputs before it writes that element's gradient):
//  - softmax_kl_div, class axis last: a block per row, three strided sweeps (maxima; exps, sums
//    and A; gradient recomputing the exps) with block reductions in fixed order, and a fourth for
//    the centred loss of a row whose plain loss cancelled. Class axis not
//    last: a thread per row, neighbouring threads on neighbouring `inner` positions (coalesced).
//  - wasserstein_loss: a thread per row for every layout. The scan over the ordered classes is
//    sequential; it runs twice (loss, B and Htot; then the gradient with the running Hpre), in
//    double with round-to-nearest intrinsics, so both runs see bit-identical h_c (a contracted
//    FMA in one of them could flip the sign of the last class's d = F - G, which is 0 up to rounding).
//    Simple and exact rather than fast: one thread walks a whole row (not tuned on a GPU).
#pragma once

#include <cmath>

#include "dtype.cuh"
#include "fastloss/losses/softmax_kl_div.h"
#include "fastloss/losses/wasserstein_loss.h"
#include "fastloss/softmax_row.h"
#include "group_reduce.cuh"
#include "launch.h"
#include "portable.cuh"
#include "scale_and_errors.cuh"

namespace fastloss::cuda {

__device__ __forceinline__ double row_grad_scale(const RowwiseArgs& a, long long row) {
  double scale = grad_scale(a.scale);
  if (a.scale.row_scale) {
    scale *= a.dtype == FL_FLOAT64 ? static_cast<const double*>(a.scale.row_scale)[row]
                            : double(static_cast<const float*>(a.scale.row_scale)[row]);
  }
  return scale;
}

// G == 0: a block per row (class axis last, inner == 1); G == 1: a thread per row at stride inner.
template <class T, int G>
__global__ void __launch_bounds__(256) distill_kernel(const RowwiseArgs a) {
  using S = math_t<T>;
  FL_SHARED_ARRAY(S, scratch, 32);
  const long long row = G == 0 ? (long long)blockIdx.x : (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= a.outer * a.inner) return;  // G == 0: the same for the whole block
  const int lane = G == 0 ? int(threadIdx.x) : 0, lanes = G == 0 ? int(blockDim.x) : 1;
  const long long C = a.classes, st = a.inner, base = (row / a.inner) * C * a.inner + row % a.inner;
  const T* x = static_cast<const T*>(a.x) + base;
  const T* y = static_cast<const T*>(a.soft_target) + base;
  T* g = a.grad ? static_cast<T*>(a.grad) + base : nullptr;
  const S it = S(1.0 / a.params.temperature), it2 = it + it;
  S mx = -INFINITY, my = -INFINITY;
  for (long long c = lane; c < C; c += lanes) {
    mx = MaxOp{}(mx, to_math(x[c * st]));
    my = MaxOp{}(my, to_math(y[c * st]));
  }
  // Halved maxima and 2/T: softmax_kl_div_shift's overflow-free (x - m)/T, as the CPU kernels.
  const S mxh = softmax_safe_max(group_allreduce<G>(mx, MaxOp{}, scratch)) * S(0.5);
  const S myh = softmax_safe_max(group_allreduce<G>(my, MaxOp{}, scratch)) * S(0.5);
  S ss = 0, sq = 0, acc = 0;
  for (long long c = lane; c < C; c += lanes) {
    const S xc = to_math(x[c * st]);
    const S s = softmax_kl_div_shift(xc, mxh, it2), u = softmax_kl_div_shift(to_math(y[c * st]), myh, it2);
    const S es = fl_exp(s), et = fl_exp(u);
    ss += es;
    sq += et;
    acc += softmax_kl_div_term(et, u, s, xc);
  }
  ss = group_allreduce<G>(ss, SumOp{}, scratch);
  sq = group_allreduce<G>(sq, SumOp{}, scratch);
  acc = group_allreduce<G>(acc, SumOp{}, scratch);
  S A_scale = 1;
  if (acc - acc != S(0) && acc == acc) {  // A overflowed although A / St may not: sum it again scaled
    const S k = softmax_kl_div_rescue_scale<S>();
    S rescued = 0;
    for (long long c = lane; c < C; c += lanes) {
      const S xc = to_math(x[c * st]);
      const S s = softmax_kl_div_shift(xc, mxh, it2), u = softmax_kl_div_shift(to_math(y[c * st]), myh, it2);
      rescued += softmax_kl_div_term(fl_exp(u), u * k, s * k, xc);
    }
    acc = group_allreduce<G>(rescued, SumOp{}, scratch);
    A_scale = k;
  }
  const S scale = S(row_grad_scale(a, row));
  const bool fold = scale - scale == S(0) && it - it == S(0);
  const KlGradScale<S> gs = softmax_kl_div_grad_scale(it, scale, fold);
  KlDivRow<S> r = softmax_kl_div_finalize(acc, ss, sq, gs.inv_t, gs.scale, A_scale);
  if (r.centre) {  // the loss cancelled: its centred form (softmax_kl_div.h), as the CPU kernels
    S phi = 0, esum = 0;
    for (long long c = lane; c < C; c += lanes) {
      const S xc = to_math(x[c * st]), yc = to_math(y[c * st]);
      const S es = fl_exp(softmax_kl_div_shift(xc, mxh, it2)), et = fl_exp(softmax_kl_div_shift(yc, myh, it2));
      const S e = softmax_kl_div_centred_d(xc, yc, mxh, myh, it2) - r.mean_d;
      phi += softmax_kl_div_centred_term(es, et, e, r.exp_mean_d);
      esum += et == S(0) ? S(0) : et * e;
    }
    phi = group_allreduce<G>(phi, SumOp{}, scratch);
    esum = group_allreduce<G>(esum, SumOp{}, scratch);
    r.loss = softmax_kl_div_centred_loss<S>(phi, esum, sq);
  }
  if (a.row_loss && lane == 0) static_cast<S*>(a.row_loss)[row] = r.loss;
  if (!g) return;
  for (long long c = lane; c < C; c += lanes) {
    const S es = fl_exp(softmax_kl_div_shift(to_math(x[c * st]), mxh, it2));
    const S et = fl_exp(softmax_kl_div_shift(to_math(y[c * st]), myh, it2));
    S val = softmax_kl_div_grad(es, et, r.a, r.a_minus_b);
    if (!fold) val = softmax_kl_div_rescale(val, gs.keep_zero, gs.ieee);
    g[c * st] = from_math<T>(val);
  }
}

// One step of the Wasserstein scan at class c: advances cum and G, returns (|d|**p, h).
template <class T>
__device__ __forceinline__ LossGrad<double> emd_step(double e, const T* y, long long c, long long st, long long t,
                                                     double inv_s, bool square, double& cum, double& G) {
  cum = __dadd_rn(cum, e);
  G = y ? __dadd_rn(G, double(to_math(y[c * st]))) : (c >= t ? 1.0 : 0.0);
  const double d = __dsub_rn(__dmul_rn(cum, inv_s), G);
  LossGrad<double> r;
  r.loss = square ? __dmul_rn(d, d) : fabs(d);
  r.grad = square ? __dmul_rn(2.0, d) : (d > 0 ? 1.0 : d < 0 ? -1.0 : d);
  return r;
}

template <class T>
__global__ void __launch_bounds__(256) wasserstein_kernel(const RowwiseArgs a) {
  using S = math_t<T>;
  const long long row = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (row >= a.outer * a.inner) return;
  const long long C = a.classes, st = a.inner, base = (row / a.inner) * C * a.inner + row % a.inner;
  const T* x = static_cast<const T*>(a.x) + base;
  const T* y = a.soft_target ? static_cast<const T*>(a.soft_target) + base : nullptr;
  T* g = a.grad ? static_cast<T*>(a.grad) + base : nullptr;
  const long long t = y ? -1 : a.target[row];
  if (!y && (t == a.params.ignore_index || t < 0 || t >= C)) {
    const bool bad = t != a.params.ignore_index;  // out of range: NaN loss and gradient, reported
    if (bad) report_bad_target(a.errors, a.loss_id, row);
    const S value = bad ? S(NAN) : S(0);
    if (a.row_loss) static_cast<S*>(a.row_loss)[row] = value;
    if (g)
      for (long long c = 0; c < C; ++c) g[c * st] = from_math<T>(value);
    return;
  }
  const bool square = a.params.p == 2;
  S m = -INFINITY;
  for (long long c = 0; c < C; ++c) m = MaxOp{}(m, to_math(x[c * st]));
  m = softmax_safe_max(m);
  double s = 0;
  for (long long c = 0; c < C; ++c) s += double(wasserstein_exp_shifted(to_math(x[c * st]), m));
  const double inv_s = 1.0 / s;
  double cum = 0, G = 0, loss = 0, B = 0, htot = 0;
  for (long long c = 0; c < C; ++c) {
    const double e = double(wasserstein_exp_shifted(to_math(x[c * st]), m));
    const LossGrad<double> h = emd_step(e, y, c, st, t, inv_s, square, cum, G);
    loss += h.loss;
    B += h.grad * __dmul_rn(cum, inv_s);
    htot += h.grad;
  }
  if (a.row_loss) static_cast<S*>(a.row_loss)[row] = S(loss);
  if (!g) return;
  const double k = row_grad_scale(a, row) * inv_s, hb = htot - B;
  double hpre = 0;
  cum = G = 0;
  for (long long c = 0; c < C; ++c) {
    const double e = double(wasserstein_exp_shifted(to_math(x[c * st]), m));  // x[c] is read before g[c] is written
    const LossGrad<double> h = emd_step(e, y, c, st, t, inv_s, square, cum, G);
    g[c * st] = from_math<T>(S(e * k * (hb - hpre)));
    hpre += h.grad;
  }
}

template <class T> cudaError_t launch_distill(const RowwiseArgs& a, cudaStream_t stream) {
  const long long rows = a.outer * a.inner;
  if (rows == 0) return cudaSuccess;
  if (a.inner == 1 && a.classes > 32) {
    const int threads = a.classes >= 4096 ? 256 : 128;
    return launch_kernel(distill_kernel<T, 0>, unsigned(rows), threads, 0, stream, a);
  }
  return launch_kernel(distill_kernel<T, 1>, unsigned((rows + 255) / 256), 256, 0, stream, a);
}

template <class T> cudaError_t launch_wasserstein(const RowwiseArgs& a, cudaStream_t stream) {
  const long long rows = a.outer * a.inner;
  if (rows == 0) return cudaSuccess;
  return launch_kernel(wasserstein_kernel<T>, unsigned((rows + 255) / 256), 256, 0, stream, a);
}

}  // namespace fastloss::cuda
