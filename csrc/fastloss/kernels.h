// The C ABI of fastloss's dispatched CPU kernels, for other C/C++ extensions.
//
// fastloss._C exports a PyCapsule named FL_KERNEL_TABLE_CAPSULE ("fastloss._C._kernel_table")
// holding a pointer to an FlKernelTable. Get it with
//   auto* t = static_cast<const fastloss::FlKernelTable*>(PyCapsule_Import("fastloss._C._kernel_table", 0));
// check t->abi_version == FL_KERNEL_ABI_VERSION, fill an FlRowwiseArgs / FlPointwiseArgs and call
// t->rowwise / t->pointwise. They run on the ISA and thread count fastloss is set to, do not touch
// Python (call them with or without the GIL), and return 0 on success, -1 with a message in
// `error` for bad arguments (nothing is written then), or FL_TARGET_OUT_OF_DOMAIN from pointwise
// when a float target is outside the loss's domain (sigmoid_focal_loss: [0, 1]; hinge_loss:
// -1, 0, +1; NaN is allowed): the outputs may then be partly written, except in place
// (grad_out == x), where the targets are checked before anything is written. Semantics: see python/fastloss/_backends.py
// (NativeBackend) and DESIGN.md section 1.2; gradient = grad_scale * row_scale[i] * dl_i/dx.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "params.h"

#ifdef __cplusplus
namespace fastloss {
extern "C" {
#endif

// 2: LossParams generated from _spec.py (typed fields), soft targets by pointer
// 3: valid_rows / divide_by_valid_rows (rowwise), hess_out (the *_grad_hess form) in both argument
//    structs, per-element vectors of point-wise losses
#define FL_KERNEL_ABI_VERSION 3
#define FL_MAX_VECTORS 2  // _spec.MAX_BROADCAST_VECTORS
#define FL_KERNEL_TABLE_CAPSULE "fastloss._C._kernel_table"
#define FL_TARGET_OUT_OF_DOMAIN 1

// Storage dtype of x, soft targets, pointwise targets and the gradient: FlDtype (params.h, generated
// from _spec.DTYPES). The math (and the loss and row_scale arrays) is float64 for FL_FLOAT64 and
// float32 for the others.

typedef struct FlRowwiseArgs {
  int loss_id;               // LossId (generated from _spec.py); must be a rowwise loss
  int dtype;                 // FlDtype
  int64_t outer, classes, inner;
  const void* x;             // (outer, classes, inner), C-contiguous
  const int64_t* target;     // (outer, inner) class indices in [0, classes) or ignore_index; NULL if soft
  const void* soft_target;   // (outer, classes, inner) probabilities (then target is NULL), or NULL
  const double* weight;      // (classes,) or NULL: CE / hinge class weights, focal per-class alpha
  LossParams params;
  const void* row_scale;     // (outer, inner) of the math type, or NULL
  double grad_scale;
  void* loss_out;            // (outer, inner) of the math type, or NULL
  void* grad_out;            // like x (may be x itself), or NULL for no gradient
  int need_loss;             // 0: skip the loss sum (the return total is then 0)
  int divide_by_valid_rows;  // 1: grad_scale /= the number of rows whose target is not ignore_index,
                             //    counted in the target check (the "mean" of losses without class weights)
  int64_t* valid_rows;       // out, or NULL: that number (class-index targets only)
  void* hess_out;            // like x, or NULL: the diagonal second derivative, scaled as the gradient
                             // (grad_out required, neither may alias x, no loss is computed)
} FlRowwiseArgs;

typedef struct FlPointwiseArgs {
  int loss_id;               // LossId; must be a pointwise loss
  int dtype;                 // FlDtype
  int64_t n;
  const void* x;             // (n,)
  const void* target;        // (n,) in x's storage dtype (hinge: 0 means -1)
  LossParams params;
  const void* row_scale;     // (n,) of the math type, or NULL
  double grad_scale;
  void* loss_out;            // (n,) of the math type, or NULL
  void* grad_out;            // (n,) like x (may be x itself), or NULL
  int need_loss;
  void* hess_out;            // (n,) like x, or NULL: as FlRowwiseArgs::hess_out
  // The loss's per-element options (_spec "broadcast_vector", e.g. BCE weight and pos_weight) in
  // the order of its options, of the math type: element i reads vectors[k][i % vector_period[k]]
  // (period n for an array of the input's shape, C for one along the last axis; n % period == 0).
  // NULL: the option's scalar value (generated broadcast_fill).
  const void* vectors[FL_MAX_VECTORS];
  int64_t vector_period[FL_MAX_VECTORS];
} FlPointwiseArgs;

typedef int (*FlRowwiseFn)(const FlRowwiseArgs* args, double* total, char* error, size_t error_size);
typedef int (*FlPointwiseFn)(const FlPointwiseArgs* args, double* total, char* error, size_t error_size);

typedef struct FlKernelTable {
  int abi_version;           // FL_KERNEL_ABI_VERSION
  FlRowwiseFn rowwise;       // *total = sum of the unreduced losses (fixed order, double)
  FlPointwiseFn pointwise;
  const char* (*isa)(void);  // the instruction set in use: "avx512", "avx2", "neon" or "scalar"
} FlKernelTable;

#ifdef __cplusplus
}  // extern "C"
}  // namespace fastloss
#endif
