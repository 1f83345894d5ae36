// Per-call constants of a rowwise kernel, in the math type S, built once from FlRowwiseArgs.
// Every loss-specific constant comes from the active loss's own options (the generated
// RowOptions: every other loss's view holds its spec defaults), so a switch such as "softcap on"
// or "label smoothing on" can never be turned on by a field another loss shares a name with.
// A new row-wise loss reads its options as k.o.<loss name>.<option> in its family's switch case.
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
  RowOptions o;               // the active loss's options (generated from _spec.py)
  IgnoreIndex ignore_index;   // the active loss's, or none: compares false with every class index
  S grad_scale;
  S cap, inv_cap;             // cross_entropy's softcap (cap == 0: off)
  CrossEntropyConsts<S> ce;
  S gamma;                    // softmax_focal_loss
  HingeConsts<S> hinge;
  bool weston_watkins;
  S inv_temperature;          // softmax_kl_div: 1/T
  bool square;                // wasserstein_loss: p == 2
  const S* weights;           // (classes,): class weights, focal alpha, or ones
  S sum_w;

  RowContext(const FlRowwiseArgs& a, const S* w, double weight_sum)
      : loss_id(a.loss_id),
        classes(a.classes),
        inner(a.inner),
        soft(a.soft_target != nullptr),
        o(a.loss_id, a.params),
        ignore_index(o.ignore_index),
        grad_scale(S(a.grad_scale)),
        cap(S(o.cross_entropy.softcap)),
        inv_cap(o.cross_entropy.softcap > 0 ? S(1.0 / o.cross_entropy.softcap) : S(0)),
        ce(o.cross_entropy, a.classes),
        gamma(S(o.softmax_focal_loss.gamma)),
        hinge(o.multiclass_hinge_loss),
        weston_watkins(o.multiclass_hinge_loss.variant == FL_VARIANT_WESTON_WATKINS),
        inv_temperature(o.softmax_kl_div.temperature > 0 ? S(1.0 / o.softmax_kl_div.temperature) : S(1)),
        square(o.wasserstein_loss.p == 2),
        weights(w),
        sum_w(S(weight_sum)) {}
};

FL_NAMESPACE_END
