// Statistics of one chunk of a row for the row-wise losses, how two chunks combine, and how they
// become the inputs of the shared scalar math (csrc/fastloss/*.h).
#pragma once

#include "fastloss/softmax_row.h"
#include "group_reduce.cuh"

namespace fastloss::cuda {


// Softmax family: everything is relative to the chunk's own max, so chunks of a long row can be
// reduced separately and combined (log-sum-exp style). Hinge: crammer_singer keeps the max over
// j != t and its first index; weston_watkins keeps the sum of loss terms and of their derivatives.
template <class S> struct RowPartial {
  S m;          // raw max of z over the chunk | crammer_singer: max_{j!=t} s_j
  S s;          // sum exp(z - safe(m))        | weston_watkins: sum of loss terms
  S sum_w;      // sum w_c                     | weston_watkins: sum of derivative terms
  S sum_wzm;    // sum w_c (z_c - safe(m))
  S sum_wq;     // soft targets: sum w_c q_c
  S sum_wq_zm;  // soft targets: sum w_c q_c (z_c - safe(m))
  S zt;         // z_t (s_t for the hinge), read before any gradient is written
  long long arg;  // crammer_singer: first j != t reaching the max
};

template <class S>
__device__ __forceinline__ RowPartial<S> combine_softmax(const RowPartial<S>& a, const RowPartial<S>& b) {
  RowPartial<S> r = a;
  r.m = a.m > b.m ? a.m : b.m;
  const S ms = softmax_safe_max(r.m), da = softmax_safe_max(a.m) - ms, db = softmax_safe_max(b.m) - ms;
  const S fa = a.s == S(0) ? S(0) : fl_exp(da), fb = b.s == S(0) ? S(0) : fl_exp(db);
  r.s = a.s * fa + b.s * fb;
  r.sum_w = a.sum_w + b.sum_w;
  r.sum_wzm = (a.sum_wzm + da * a.sum_w) + (b.sum_wzm + db * b.sum_w);
  r.sum_wq = a.sum_wq + b.sum_wq;
  r.sum_wq_zm = (a.sum_wq_zm + da * a.sum_wq) + (b.sum_wq_zm + db * b.sum_wq);
  return r;
}

template <class S>
__device__ __forceinline__ RowPartial<S> combine_hinge(const RowPartial<S>& a, const RowPartial<S>& b,
                                                       bool weston_watkins) {
  RowPartial<S> r = a;
  if (weston_watkins) {
    r.s = a.s + b.s;
    r.sum_w = a.sum_w + b.sum_w;
  } else if (argmax_before(b.m, b.arg, a.m, a.arg)) {
    r.m = b.m;
    r.arg = b.arg;
  }
  return r;
}

template <class S>
__device__ __forceinline__ SoftmaxRowStats<S> softmax_stats(const RowPartial<S>& p, S w_t) {
  SoftmaxRowStats<S> st;
  st.m = softmax_safe_max(p.m);
  st.s = p.s;
  st.zt_m = p.zt - st.m;
  st.w_t = w_t;
  st.sum_w = p.sum_w;
  st.sum_wzm = p.sum_wzm;
  st.sum_wq = p.sum_wq;
  st.sum_wq_zm = p.sum_wq_zm;
  return st;
}

}  // namespace fastloss::cuda
