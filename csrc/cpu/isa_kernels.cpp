// The kernels of one instruction set. CMake compiles this file once per ISA with that ISA's flags
// only and FASTLOSS_ISA set to its name (which also names the inline namespace of every inline
// function, so nothing compiled here can leak into another ISA's code).
#if defined(FL_ISA_AVX512)
#include "simd/vec_avx512.h"
#elif defined(FL_ISA_AVX2)
#include "simd/vec_avx2.h"
#elif defined(FL_ISA_NEON)
#include "simd/vec_neon.h"
#else
#include "simd/vec_scalar_isa.h"
#endif

#include "pointwise_kernel.h"
#include "rowwise_kernel.h"
#include "workspace.h"

FL_NAMESPACE_BEGIN

static WorkPlan rowwise_plan_entry(const FlRowwiseArgs& a) {
  return a.dtype == FL_FLOAT64 ? rowwise_plan<Vd>(a) : rowwise_plan<Vf>(a);
}

static double rowwise_entry(const FlRowwiseArgs& a, const Workspace& ws) {
  switch (a.dtype) {
    case FL_FLOAT64: return rowwise_run<Vd, double>(a, ws);
    case FL_FLOAT16: return rowwise_run<Vf, f16>(a, ws);
    case FL_BFLOAT16: return rowwise_run<Vf, bf16>(a, ws);
    default: return rowwise_run<Vf, float>(a, ws);
  }
}

static WorkPlan pointwise_plan_entry(const FlPointwiseArgs& a) { return pointwise_plan(a); }

static double pointwise_entry(const FlPointwiseArgs& a, const Workspace& ws) {
  switch (a.dtype) {
    case FL_FLOAT64: return pointwise_run<Vd, Vd, double>(a, ws);
    case FL_FLOAT16: return pointwise_run<Vf, Vd, f16>(a, ws);
    case FL_BFLOAT16: return pointwise_run<Vf, Vd, bf16>(a, ws);
    default: return pointwise_run<Vf, Vd, float>(a, ws);
  }
}

static void vector_math_entry(int f, const float* in, float* out, int64_t n) {
  auto apply = [f](Vf v) {
    return f == 0 ? fl_exp(v) : f == 1 ? fl_log(v) : f == 2 ? fl_log1p(v) : f == 3 ? fl_tanh(v) : fl_log1p_unit(v);
  };
  int64_t i = 0;
  for (; i + Vf::lanes <= n; i += Vf::lanes) apply(Vf::load(in + i)).store(out + i);
  if (i < n) {  // the tail through a padded vector, so every value sees the vector code
    float pad[Vf::lanes], res[Vf::lanes];
    for (int j = 0; j < Vf::lanes; ++j) pad[j] = i + j < n ? in[i + j] : 1.0f;
    apply(Vf::load(pad)).store(res);
    for (int j = 0; i + j < n; ++j) out[i + j] = res[j];
  }
}

FL_NAMESPACE_END

#define FL_STR2(x) #x
#define FL_STR(x) FL_STR2(x)
#define FL_CAT2(a, b) a##b
#define FL_CAT(a, b) FL_CAT2(a, b)

extern "C" const fastloss::IsaKernels FL_CAT(fastloss_cpu_kernels_, FASTLOSS_ISA) = {
    FL_STR(FASTLOSS_ISA),         fastloss::rowwise_plan_entry,   fastloss::rowwise_entry,
    fastloss::pointwise_plan_entry, fastloss::pointwise_entry, fastloss::vector_math_entry,
};
