// What the binding hands the CUDA kernels: raw device pointers, sizes and scalar parameters of one
// canonical problem (python/fastloss/_backends.py Problem), plus the stream to run on.
// Host-only header: compiled by both nvcc and the C++ compiler of the binding.
#pragma once

#include <cuda_runtime_api.h>

#include "fastloss/params.h"

namespace fastloss::cuda {

using DType = FlDtype;  // generated from _spec.DTYPES (params.h)

// Target errors found inside a kernel, in pinned host memory mapped into the device address space:
// kernels write it with plain stores, the host reads it without synchronising (see errors.cpp).
struct DeviceErrors {
  volatile int flag;           // 1 once a kernel found a bad target
  volatile int loss_id;        // the loss (cpp_id) whose kernel found it
  volatile long long index;    // flat index of a bad row (class targets) or element (pointwise)
};
enum ErrorKind : int { kNoError = 0, kBadTarget = 1 };

// d(reduced loss)/d(loss_r) for every row / element r:
//   host * (*numerator if set) / (*denominator if set) * (row_scale[r] if set)
// numerator: a grad_output given as a device scalar; denominator: a "mean" denominator that
// depends on the targets and is computed on the device (no host synchronisation).
struct GradScale {
  double host;
  const double* numerator;
  const double* denominator;
  const void* row_scale;  // in the math type (float; double for float64 inputs)
};

// How the losses are reduced to a scalar (reduction "mean"/"sum").
struct Reduction {
  int kind;                 // 0 none, 1 sum, 2 mean
  double host_denominator;  // "mean" when the denominator is known from shapes
  int device_denominator;   // 0 host value, 1 count of non-ignored rows, 2 sum of w_t over them
  void* total;              // 0-d output in the loss dtype (float32; float64 for float64 inputs)
};

struct RowwiseArgs {
  int loss_id;  // cpp_id: LOSS_cross_entropy, LOSS_softmax_focal_loss, LOSS_multiclass_hinge_loss
  DType dtype;
  const void* x;  // (outer, C, inner), C-contiguous
  void* grad;     // same layout and dtype, may equal x; null: no gradient
  long long outer, classes, inner;
  const long long* target;    // class indices (outer*inner), or null with soft targets
  const void* soft_target;    // (outer, C, inner) in x's dtype, or null
  const void* class_weight;   // (C,) in the math type or null: weight, or focal alpha per class
  double class_weight_fill;   // its value where class_weight is null (class_vector_fill: 1, focal alpha)
  LossParams params;
  GradScale scale;
  void* row_loss;             // (outer*inner) in the math type, or null
  DeviceErrors* errors;
  int allow_cluster;          // 1: long rows may use the Hopper thread-block-cluster plan
  void* hess;                 // *_grad_hess: the Hessian diagonal, like grad (then no loss); or null
};

struct PointwiseArgs {
  int loss_id;
  DType dtype;
  const void* x;       // (n,)
  const void* target;  // (n,) in x's dtype
  void* grad;          // (n,) in x's dtype, may equal x; null: no gradient
  long long n;
  LossParams params;
  GradScale scale;
  void* elem_loss;     // (n,) in the math type ("none"), or null
  double target_lo, target_hi;  // target domain; NaN targets always pass (they propagate)
  int target_integral;          // 1: the target must also be a whole number (hinge: -1, 0, 1)
  int check_target;             // 0: any target value
  DeviceErrors* errors;
  void* hess;          // *_grad_hess: (n,) in x's dtype (then no loss, grad required); or null
  // Per-element vectors (_spec "broadcast_vector"), math type: element e reads vectors[k][e % period];
  // null: vector_fill[k], the option's scalar (broadcast_fill). As FlPointwiseArgs of kernels.h.
  const void* vectors[2];
  long long vector_period[2];
  double vector_fill[2];
};

// Each entry point enqueues its kernels on `stream` (on the current device) and returns without
// synchronising: null on success, else the CUDA runtime's message.
const char* run_rowwise(RowwiseArgs args, Reduction red, cudaStream_t stream);
const char* run_pointwise(PointwiseArgs args, Reduction red, cudaStream_t stream);
// The *_grad_hess form (grad and hess both set, distinct from x): csrc/cuda/grad_hess.cu.
const char* run_grad_hess_rowwise(RowwiseArgs args, cudaStream_t stream);
const char* run_grad_hess_pointwise(PointwiseArgs args, cudaStream_t stream);

// The row-wise kernels behind run_rowwise, per dtype (one translation unit each).
template <class T> cudaError_t launch_rowwise(const RowwiseArgs& a, cudaStream_t stream);

}  // namespace fastloss::cuda
