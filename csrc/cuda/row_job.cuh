// The work on one row (or one chunk of a long row) shared by every row-wise kernel: per-row
// context, the statistics pass, the scalar finalize (csrc/fastloss/*.h) and the gradient pass.
// A row's elements are read through a RowView, so the same code serves rows cached in shared
// memory, strided rows (class axis not last) read from global memory, and chunks of long rows.
#pragma once

#include <cmath>

#include "dtype.cuh"
#include "fastloss/losses/cross_entropy.h"
#include "fastloss/losses/multiclass_hinge_loss.h"
#include "fastloss/losses/softmax_focal_loss.h"
#include "group_reduce.cuh"
#include "launch.h"
#include "row_stats.cuh"
#include "scale_and_errors.cuh"

namespace fastloss::cuda {

// Element c of a row (or chunk) at p[c * stride].
template <class T> struct RowView {
  const T* p;
  long long stride;
  __device__ __forceinline__ math_t<T> operator[](long long c) const { return to_math(p[c * stride]); }
};

template <int kLoss> struct LossTag {};

// The losses of the softmax-family and hinge row kernels (generated from _spec.py's row_kernel).
#define FL_IS(name) || id == LOSS_##name
constexpr bool softmax_row_loss(int id) { return false FL_LOSSES_ROW_SOFTMAX(FL_IS); }
constexpr bool hinge_row_loss(int id) { return false FL_LOSSES_ROW_HINGE(FL_IS); }
#undef FL_IS

// The row constants of loss kLoss, read from that loss's own options only: the fields of another
// loss keep neutral values (no softcap, no smoothing), whatever LossParams holds for them.
template <class S> struct RowConsts {
  CrossEntropyConsts<S> ce;
  HingeConsts<S> hinge;
  S cap, inv_cap, gamma;
  bool soft, smoothing, weston_watkins;
  const S* weight;  // class weights (cross_entropy, hinge) or focal alpha per class; may be null
  S weight_fill;    // the class vector's value where the caller gave none (focal: the scalar alpha)
  template <int kLoss>
  __device__ RowConsts(const RowwiseArgs& a, LossTag<kLoss>)
      : ce(kLoss == LOSS_cross_entropy ? a.params : LossParams{}, a.classes),
        hinge(hinge_row_loss(kLoss) ? a.params : LossParams{}),
        cap(kLoss == LOSS_cross_entropy ? S(a.params.softcap) : S(0)),
        inv_cap(kLoss == LOSS_cross_entropy && a.params.softcap > 0 ? S(1.0 / a.params.softcap) : S(0)),
        gamma(kLoss == LOSS_softmax_focal_loss ? S(a.params.gamma) : S(0)),
        soft(a.soft_target != nullptr),
        smoothing(kLoss == LOSS_cross_entropy && a.params.label_smoothing != 0.0),
        weston_watkins(hinge_row_loss(kLoss) && a.params.variant == FL_VARIANT_WESTON_WATKINS),
        weight(static_cast<const S*>(a.class_weight)),
        weight_fill(S(a.class_weight_fill)) {
    static_assert(softmax_row_loss(kLoss) || hinge_row_loss(kLoss),
                  "RowConsts serves the softmax and hinge row kernels only");
    static_assert(kLoss == LOSS_cross_entropy || kLoss == LOSS_softmax_focal_loss || hinge_row_loss(kLoss),
                  "a new row-wise loss: read its options in RowConsts (and add it to finalize_row)");
  }
  __device__ __forceinline__ S w(long long c) const { return weight ? weight[c] : weight_fill; }
  __device__ __forceinline__ S z(S x, S& th) const {
    th = S(0);
    return cap > S(0) ? softcap_z(x, cap, inv_cap, th) : x;
  }
};

template <class S> struct RowInfo {
  long long t;  // class target; -1 for soft targets
  bool skip;    // ignore_index: loss 0 and a zero gradient row
  bool bad;     // target out of range: NaN loss and gradient, reported through DeviceErrors
  S w_t;        // weight (or focal alpha) of the target class
  S scale;      // d(reduced loss)/d(row loss)
};

template <int kLoss, class S>
__device__ RowInfo<S> row_info(const RowwiseArgs& a, const RowConsts<S>& k, long long row) {
  RowInfo<S> r{-1, false, false, S(1), S(0)};
  if (a.target) {
    r.t = a.target[row];
    if (r.t == a.params.ignore_index) {
      r.skip = true;
    } else if (r.t < 0 || r.t >= a.classes) {
      r.bad = true;
    } else {
      r.w_t = k.w(r.t);
    }
  }
  double scale = grad_scale(a.scale);
  if (a.scale.row_scale) scale *= double(static_cast<const S*>(a.scale.row_scale)[row]);
  r.scale = S(scale);
  return r;
}

// Statistics of elements [0, len) of a chunk starting at class c0 (x through xv, soft targets
// through yv). Lane `lane` of the row's G threads takes elements lane, lane + lanes, ...
template <int kLoss, int G, class T>
__device__ RowPartial<math_t<T>> chunk_stats(const RowConsts<math_t<T>>& k, const RowInfo<math_t<T>>& ri,
                                             RowView<T> xv, RowView<T> yv, long long c0, long long len,
                                             math_t<T> zt, int lane, int lanes, void* scratch) {
  using S = math_t<T>;
  S* sc = static_cast<S*>(scratch);
  RowPartial<S> p{-INFINITY, S(0), S(0), S(0), S(0), S(0), zt, -1};
  if constexpr (kLoss == LOSS_multiclass_hinge_loss) {
    if (k.weston_watkins) {
      for (long long c = lane; c < len; c += lanes) {
        if (c0 + c == ri.t) continue;
        LossGrad<S> term = weston_watkins_term(xv[c], zt, k.hinge);
        p.s += term.loss;
        p.sum_w += term.grad;
      }
      p.s = group_allreduce<G>(p.s, SumOp{}, sc);
      p.sum_w = group_allreduce<G>(p.sum_w, SumOp{}, sc);
    } else {
      ArgMax<S> best{-INFINITY, -1};
      for (long long c = lane; c < len; c += lanes) {
        if (c0 + c == ri.t) continue;
        best = argmax_combine(best, ArgMax<S>{xv[c], c0 + c});
      }
      best = group_argmax<G>(best, static_cast<ArgMax<S>*>(scratch));
      p.m = best.value;
      p.arg = best.index;
    }
    return p;
  } else {
    S th, m = -INFINITY;
    for (long long c = lane; c < len; c += lanes) m = MaxOp{}(m, k.z(xv[c], th));
    p.m = group_allreduce<G>(m, MaxOp{}, sc);
    const S ms = softmax_safe_max(p.m);
    const bool weighted_z = kLoss == LOSS_cross_entropy && k.smoothing && !k.soft;
    const bool soft = kLoss == LOSS_cross_entropy && k.soft;
    for (long long c = lane; c < len; c += lanes) {
      const S zm = k.z(xv[c], th) - ms;
      p.s += fl_exp(zm);
      if (weighted_z) {
        const S w = k.w(c0 + c);
        p.sum_w += w;
        p.sum_wzm += w * zm;
      } else if (soft) {
        const S wq = k.w(c0 + c) * cross_entropy_soft_q(yv[c], k.ce);
        p.sum_wq += wq;
        p.sum_wq_zm += wq * zm;
      }
    }
    p.s = group_allreduce<G>(p.s, SumOp{}, sc);
    if (weighted_z) {
      p.sum_w = group_allreduce<G>(p.sum_w, SumOp{}, sc);
      p.sum_wzm = group_allreduce<G>(p.sum_wzm, SumOp{}, sc);
    } else if (soft) {
      p.sum_wq = group_allreduce<G>(p.sum_wq, SumOp{}, sc);
      p.sum_wq_zm = group_allreduce<G>(p.sum_wq_zm, SumOp{}, sc);
    }
    return p;
  }
}

// The row's loss and the coefficients of its gradient (scale already applied).
template <class S> struct RowCoef {
  S loss;
  S a, b, t_coef, ms;  // softmax family: g_c = (e_c a - b wq_c - [c==t] t_coef) dz_c/dx_c
  S d;                 // hinge: crammer_singer dl/ds_{j*}; weston_watkins scale * w_t
  S zt;                // z_t or s_t
  S d_sum;             // weston_watkins: sum of derivative terms (times d gives -g_t)
  long long arg;       // crammer_singer j*
};

template <int kLoss, class S>
__device__ RowCoef<S> finalize_row(const RowConsts<S>& k, const RowInfo<S>& ri, const RowPartial<S>& p) {
  RowCoef<S> r{};
  r.zt = p.zt;
  if constexpr (kLoss == LOSS_multiclass_hinge_loss) {
    if (k.weston_watkins) {
      r.loss = ri.w_t * p.s;
      r.d = ri.scale * ri.w_t;
      r.d_sum = p.sum_w;
    } else {
      LossGrad<S> cs = crammer_singer_finalize(p.zt, p.m, ri.w_t, k.hinge, ri.scale);
      r.loss = cs.loss;
      r.d = cs.grad;
      r.arg = p.arg;
    }
  } else {
    const SoftmaxRowStats<S> st = softmax_stats(p, ri.w_t);
    SoftmaxRowResult<S> res;
    if constexpr (kLoss == LOSS_softmax_focal_loss) {
      res = softmax_focal_finalize(st, k.gamma, ri.scale);
    } else if constexpr (kLoss == LOSS_cross_entropy) {
      res = k.soft ? cross_entropy_finalize_soft(st, k.ce, ri.scale)
                   : cross_entropy_finalize_hard(st, k.ce, ri.scale);
    } else {
      static_assert(kLoss < 0, "finalize_row: a row-wise loss without its finalize (no fall-through to another loss)");
    }
    r.loss = res.loss;
    r.a = res.a;
    r.b = res.b;
    r.t_coef = res.t_coef;
    r.ms = st.m;
  }
  return r;
}

// Gradient of the element at class c with input x (and soft target y).
template <int kLoss, class S>
__device__ __forceinline__ S grad_element(const RowConsts<S>& k, const RowInfo<S>& ri, const RowCoef<S>& r,
                                          long long c, S x, S y) {
  if constexpr (kLoss == LOSS_multiclass_hinge_loss) {
    if (k.weston_watkins) {
      return c == ri.t ? -r.d * r.d_sum : r.d * weston_watkins_term(x, r.zt, k.hinge).grad;
    }
    return c == r.arg ? r.d : (c == ri.t ? -r.d : S(0));
  } else {
    S th;
    const S z = k.z(x, th);
    S wq = S(0);
    if (kLoss == LOSS_cross_entropy && r.b != S(0)) {
      wq = k.w(c);
      if (k.soft) wq *= cross_entropy_soft_q(y, k.ce);
    }
    S g = softmax_grad(fl_exp(z - r.ms), wq, r.a, r.b);
    if (c == ri.t) g -= r.t_coef;
    return k.cap > S(0) ? g * softcap_dz_dx(th) : g;
  }
}

// Writes the gradient of elements [0, len) of a chunk starting at class c0 to dst (stride dst_stride),
// or `fill` everywhere when the row is ignored (0) or bad (NaN). vec: xv, yv and dst are contiguous
// and 16-byte aligned, so whole 16-byte vectors are loaded and stored.
template <int kLoss, class T>
__device__ void write_grad(const RowConsts<math_t<T>>& k, const RowInfo<math_t<T>>& ri,
                           const RowCoef<math_t<T>>& r, RowView<T> xv, RowView<T> yv, T* dst,
                           long long dst_stride, long long c0, long long len, bool vec, bool fill,
                           math_t<T> fill_value, int lane, int lanes) {
  using S = math_t<T>;
  constexpr int V = Vec16<T>::kSize;
  if (vec) {
    for (long long v = lane; v < len / V; v += lanes) {
      Vec16<T> out, xin, yin;
      if (!fill) xin = reinterpret_cast<const Vec16<T>*>(xv.p)[v];
      if (!fill && k.soft) yin = reinterpret_cast<const Vec16<T>*>(yv.p)[v];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const long long c = c0 + v * V + j;
        const S g = fill ? fill_value
                         : grad_element<kLoss>(k, ri, r, c, to_math(xin.v[j]), k.soft ? to_math(yin.v[j]) : S(0));
        out.v[j] = from_math<T>(g);
      }
      reinterpret_cast<Vec16<T>*>(dst)[v] = out;
    }
    return;
  }
  for (long long c = lane; c < len; c += lanes) {
    const S g = fill ? fill_value : grad_element<kLoss>(k, ri, r, c0 + c, xv[c], k.soft ? yv[c] : S(0));
    dst[c * dst_stride] = from_math<T>(g);
  }
}

}  // namespace fastloss::cuda
