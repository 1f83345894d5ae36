// Two things every kernel does the same way: form its gradient scale and report a bad target.
#pragma once

#include "launch.h"

namespace fastloss::cuda {

__device__ __forceinline__ double grad_scale(const GradScale& g) {
  double s = g.host;
  if (g.numerator) s *= *g.numerator;
  if (g.denominator) s /= *g.denominator;
  return s;
}

// Plain stores into mapped pinned memory: any one bad index wins, which is all the report needs.
__device__ __forceinline__ void report_bad_target(DeviceErrors* e, int loss_id, long long index) {
  if (e == nullptr) return;
  e->index = index;
  e->loss_id = loss_id;
  __threadfence_system();
  e->flag = 1;
}

}  // namespace fastloss::cuda
