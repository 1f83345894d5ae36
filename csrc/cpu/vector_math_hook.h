// The math vocabulary of csrc/fastloss/math_ops.h as the test hook fastloss._C._vector_math runs
// it (tests/test_native_vector_math.py; tests/neon_driver.cpp for NEON under qemu): X(name, arity,
// expression of the operands a, b, c of vector type W). One list, so the hook, its Python names and
// the NEON driver cannot drift apart.
#pragma once

#define FL_VECTOR_MATH_FUNCTIONS(X)                                                              \
  X(exp, 1, fl_exp(a))                                                                           \
  X(log, 1, fl_log(a))                                                                           \
  X(log1p, 1, fl_log1p(a))                                                                       \
  X(tanh, 1, fl_tanh(a))                                                                         \
  X(log1p_unit, 1, fl_log1p_unit(a))                                                             \
  X(exp_nonpos, 1, fl_exp_nonpos(a))                                                             \
  X(expm1, 1, fl_expm1(a))                                                                       \
  X(sqrt, 1, fl_sqrt(a))                                                                         \
  X(rsqrt, 1, fl_rsqrt(a))                                                                       \
  X(sigmoid, 1, fl_sigmoid(a))                                                                   \
  X(softplus, 1, fl_softplus(a))                                                                 \
  X(abs, 1, fl_abs(a))                                                                           \
  X(sign, 1, fl_sign(a))                                                                         \
  X(neg, 1, -a)                                                                                  \
  X(min, 2, fl_min(a, b))                                                                        \
  X(max, 2, fl_max(a, b))                                                                        \
  X(div, 2, fl_div(a, b))                                                                        \
  X(pow, 2, fl_pow(a, b))                                                                        \
  X(fma, 3, fl_fma(a, b, c))                                                                     \
  X(select, 3, select(a > W(0), b, c))

// The hook's function ids: the position in the list.
enum VectorMathId {
#define FL_VM_ID(name, arity, expr) FL_VM_##name,
  FL_VECTOR_MATH_FUNCTIONS(FL_VM_ID)
#undef FL_VM_ID
  FL_VM_COUNT
};
