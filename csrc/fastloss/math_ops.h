// The operations every loss formula may use, for V = float and V = double. SIMD vector types
// (csrc/cpu/simd) provide the same names for their own types, found by argument-dependent lookup,
// so a formula written once against V runs on scalars (CPU reference path, CUDA threads) and on
// whole vectors alike.
//
// Conventions shared with the vector types:
//   fl_min(a, b) / fl_max(a, b) return b when either is NaN (x86 minps/maxps semantics), so
//   fl_min(hi, fl_max(lo, e)) clamps e and lets a NaN e through.
//   select(mask, a, b) is mask ? a : b lane-wise; comparisons yield masks (bool for scalars).
//   ScalarOf<V>::type is the lane type (float or double).
#pragma once

#include <cmath>

// Every inline function lives in an inline namespace named after the instruction set it is
// compiled for (FASTLOSS_ISA, set per translation unit by csrc/cpu/CMakeLists.txt), so copies built
// with AVX-512 flags can never be merged by the linker into code that runs on a lesser CPU.
#ifndef FASTLOSS_ISA
#define FASTLOSS_ISA generic
#endif
#define FL_NAMESPACE_BEGIN namespace fastloss { inline namespace FASTLOSS_ISA {
#define FL_NAMESPACE_END } }

#if defined(__CUDACC__)
#define FL_HD __host__ __device__ __forceinline__
#else
#define FL_HD inline
#endif

FL_NAMESPACE_BEGIN

template <class V> struct ScalarOf { using type = typename V::scalar; };
template <> struct ScalarOf<float> { using type = float; };
template <> struct ScalarOf<double> { using type = double; };
template <class V> using scalar_t = typename ScalarOf<V>::type;

// A loss value and its derivative with respect to the input, for pointwise losses.
template <class V> struct LossGrad {
  V loss;
  V grad;
};

// The first and the (diagonal) second derivative with respect to the input, for the *_grad_hess
// form of point-wise losses (a loss struct's grad_hess(x, y)).
template <class V> struct GradHess {
  V grad;
  V hess;
};

FL_HD float select(bool m, float a, float b) { return m ? a : b; }
FL_HD double select(bool m, double a, double b) { return m ? a : b; }
FL_HD float fl_min(float a, float b) { return a < b ? a : b; }
FL_HD double fl_min(double a, double b) { return a < b ? a : b; }
FL_HD float fl_max(float a, float b) { return a > b ? a : b; }
FL_HD double fl_max(double a, double b) { return a > b ? a : b; }
FL_HD float fl_abs(float a) { return ::fabsf(a); }
FL_HD double fl_abs(double a) { return ::fabs(a); }
FL_HD float fl_exp(float a) { return ::expf(a); }
FL_HD double fl_exp(double a) { return ::exp(a); }
// exp(a) for a <= 0 (or NaN), e.g. exp(z - max z) or exp(-|x|): vector types skip the overflow clamp.
FL_HD float fl_exp_nonpos(float a) { return ::expf(a); }
FL_HD double fl_exp_nonpos(double a) { return ::exp(a); }
FL_HD float fl_log(float a) { return ::logf(a); }
FL_HD double fl_log(double a) { return ::log(a); }
FL_HD float fl_log1p(float a) { return ::log1pf(a); }
FL_HD double fl_log1p(double a) { return ::log1p(a); }
// log1p(u) for u in [0, 1] only (e.g. log1p(exp(-|x|)) of softplus); vector types may use a
// cheaper series there.
FL_HD float fl_log1p_unit(float a) { return ::log1pf(a); }
FL_HD double fl_log1p_unit(double a) { return ::log1p(a); }
FL_HD float fl_expm1(float a) { return ::expm1f(a); }
FL_HD double fl_expm1(double a) { return ::expm1(a); }
FL_HD float fl_tanh(float a) { return ::tanhf(a); }
FL_HD double fl_tanh(double a) { return ::tanh(a); }
FL_HD float fl_pow(float a, float b) { return ::powf(a, b); }
FL_HD double fl_pow(double a, double b) { return ::pow(a, b); }
// a / b where b is a finite normal number whose reciprocal is normal too (a denominator such as
// 1 + e or 2 + u); SIMD types may use a reciprocal estimate refined by a Newton step there, within
// 1 ulp of the correctly rounded quotient. Scalars (CPU reference, CUDA) divide.
FL_HD float fl_div(float a, float b) { return a / b; }
FL_HD double fl_div(double a, double b) { return a / b; }
FL_HD bool fl_isnan(float a) { return a != a; }
FL_HD bool fl_isnan(double a) { return a != a; }

// sign(e) with sign(0) = 0 and sign(NaN) = NaN, as numpy.sign / torch.sign.
template <class V> FL_HD V fl_sign(V e) {
  return select(e > V(0), V(1), select(e < V(0), V(-1), e));
}

FL_NAMESPACE_END
