// Scalar loss parameters, one field per key of native_params() in python/fastloss/_backends.py.
// Plain C layout (doubles) so it can cross the PyCapsule ABI (kernels.h) and be copied to a GPU.
#pragma once

#ifdef __cplusplus
namespace fastloss {
#endif

enum LossId {
#define FASTLOSS_LOSS(name, kind) LOSS_##name,
#include "losses.def"
#undef FASTLOSS_LOSS
  LOSS_COUNT
};

typedef struct LossParams {
  double ignore_index;    // integer class targets equal to it give 0 loss and a 0 gradient row
  double label_smoothing; // eps of cross_entropy
  double z_loss;          // coefficient of lse**2
  double softcap;         // 0: off; else z = softcap*tanh(x/softcap)
  double gamma;           // focal exponent
  double alpha;           // focal alpha (sigmoid: < 0 disables; softmax: scalar when no class vector)
  double margin;          // hinge margins
  double squared;         // 1: square each hinge term
  double weston_watkins;  // 1: weston_watkins, 0: crammer_singer
  double delta;           // huber
  double beta;            // smooth_l1 (0 is L1)
  double soft_target;     // 1: cross_entropy target holds probabilities with the input's shape
} LossParams;

#ifdef __cplusplus
}  // namespace fastloss
#endif
