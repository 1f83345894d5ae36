// multiclass_hinge_loss on a row of C scores s_c with target t and weight w_t (1 if none).
//
// crammer_singer:  h = margin + (max_{j!=t} s_j - s_t) (j* = first maximiser)
//   l = w_t * (h or h^2) if h > 0 else 0;  dl/ds_{j*} = w_t (1 or 2h) = -dl/ds_t; others 0.
//   Row statistics: s_t, the max over j != t and j*; finalize below.
// weston_watkins:  h_j = margin + (s_j - s_t) for j != t
//   l = w_t sum_{j!=t} (h_j or h_j^2) [h_j > 0];  dl/ds_j = w_t (1 or 2 h_j) [h_j > 0] (j != t),
//   dl/ds_t = -sum_{j!=t} dl/ds_j.
//   Per element: weston_watkins_term (in V); the kernel sums terms and d over j != t.
// A hinge exactly at 0 has gradient 0 (PyTorch's multi_margin_loss). h_j is formed as
// margin + (s_j - s_t) so that it is exactly margin at j = t, whatever the magnitude of s.
// C = 1 (crammer_singer): max over no class is -inf, so h = -inf and l = 0.
// A NaN score (s_t, or the max over j != t, which is then NaN with j* the first NaN) makes h NaN:
// the loss and both gradient entries are NaN, as DESIGN's "NaN propagates". The gradient is
// scale * (its unscaled value): an inactive row's 0 times an infinite grad_output is NaN (IEEE).
#pragma once

#include "../params.h"
#include "../math_ops.h"

FL_NAMESPACE_BEGIN

template <class S> struct HingeConsts {
  S margin;
  bool squared;
  explicit FL_HD HingeConsts(const multiclass_hinge_loss_params& p) : margin(S(p.margin)), squared(p.squared) {}
};

// One Weston-Watkins term for score s against the target score s_t: {loss term, d term}.
template <class V, class S>
FL_HD LossGrad<V> weston_watkins_term(V s, V s_t, const HingeConsts<S>& k) {
  V h = V(k.margin) + (s - s_t);
  auto active = h > V(0);
  LossGrad<V> r;
  r.loss = select(active, k.squared ? h * h : h, V(0));
  r.grad = select(active, k.squared ? V(2) * h : V(1), V(0));
  return r;
}

// Second derivative of one Weston-Watkins term in s (and in s_t): 2 on an active squared hinge, else 0.
template <class V, class S> FL_HD V weston_watkins_term_hess(V s, V s_t, const HingeConsts<S>& k) {
  if (!k.squared) return V(0);
  return select(V(k.margin) + (s - s_t) > V(0), V(2), V(0));
}

// Crammer-Singer's second derivative at s_{j*} and at s_t (times w_t and the scale): 2 w_t on an
// active squared hinge, else 0.
template <class S> FL_HD S crammer_singer_hess(S s_t, S max_other, S w_t, const HingeConsts<S>& k, S scale) {
  return k.squared && k.margin + (max_other - s_t) > S(0) ? scale * w_t * S(2) : S(0);
}

// Crammer-Singer: loss and d = dl/ds_{j*} (already times w_t and the gradient scale).
template <class S>
FL_HD LossGrad<S> crammer_singer_finalize(S s_t, S max_other, S w_t, const HingeConsts<S>& k,
                                          S scale) {
  S h = k.margin + (max_other - s_t);  // exactly margin for a tie, whatever the magnitude
  bool active = h > S(0);
  LossGrad<S> r;
  if (h != h) {
    r.loss = r.grad = h;
    return r;
  }
  r.loss = active ? w_t * (k.squared ? h * h : h) : S(0);
  r.grad = (active ? w_t * (k.squared ? S(2) * h : S(1)) : S(0)) * scale;
  return r;
}

FL_NAMESPACE_END
