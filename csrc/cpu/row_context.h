// Per-call constants of a rowwise kernel, in the math type S, built once from FlRowwiseArgs.
#pragma once

#include <stdint.h>

#include "../fastloss/losses/cross_entropy.h"
#include "../fastloss/kernels.h"
#include "../fastloss/losses/multiclass_hinge_loss.h"

FL_NAMESPACE_BEGIN

template <class S> struct RowContext {
  int loss_id;
  int64_t classes, inner;
  bool soft;
  int64_t ignore_index;
  S grad_scale;
  S cap, inv_cap;       // softcap (cap == 0: off)
  CrossEntropyConsts<S> ce;
  S gamma;
  HingeConsts<S> hinge;
  bool weston_watkins;
  S inv_temperature;    // softmax_kl_div: 1/T
  bool square;          // wasserstein_loss: p == 2
  const S* weights;     // (classes,): class weights, focal alpha, or ones
  S sum_w;

  RowContext(const FlRowwiseArgs& a, const S* w, double weight_sum)
      : loss_id(a.loss_id),
        classes(a.classes),
        inner(a.inner),
        soft(a.soft_target != nullptr),
        ignore_index(a.params.ignore_index),
        grad_scale(S(a.grad_scale)),
        cap(S(a.params.softcap)),
        inv_cap(a.params.softcap > 0 ? S(1.0 / a.params.softcap) : S(0)),
        ce(a.params, a.classes),
        gamma(S(a.params.gamma)),
        hinge(a.params),
        weston_watkins(a.params.variant == FL_VARIANT_WESTON_WATKINS),
        inv_temperature(a.params.temperature > 0 ? S(1.0 / a.params.temperature) : S(1)),
        square(a.params.p == 2),
        weights(w),
        sum_w(S(weight_sum)) {}
};

FL_NAMESPACE_END
