// One-lane "vector" over float or double: the scalar ISA, and the tail type every ISA uses for the
// last elements of a row that do not fill a whole vector. Its math is the C library's (<= 1 ulp),
// which makes it the reference for the SIMD versions.
#pragma once

#include "storage.h"

FL_NAMESPACE_BEGIN

template <class S> struct Lane1 {
  using scalar = S;
  using mask = bool;
  static constexpr int lanes = 1;
  S v;
  Lane1() = default;
  Lane1(S s) : v(s) {}  // NOLINT: broadcasts like the SIMD types
  template <class T> static Lane1 load(const T* p) { return Lane1(load_scalar<S>(p)); }
  template <class T> void store(T* p) const { store_scalar(p, v); }
  void lanes_to(S* out) const { out[0] = v; }
  static Lane1 from_lanes(const S* in) { return Lane1(in[0]); }
};

#define FL_LANE1_BINOP(op)                                                                       \
  template <class S> inline Lane1<S> operator op(Lane1<S> a, Lane1<S> b) { return Lane1<S>(a.v op b.v); }
FL_LANE1_BINOP(+)
FL_LANE1_BINOP(-)
FL_LANE1_BINOP(*)
FL_LANE1_BINOP(/)
#undef FL_LANE1_BINOP
#define FL_LANE1_CMP(op)                                                                         \
  template <class S> inline bool operator op(Lane1<S> a, Lane1<S> b) { return a.v op b.v; }
FL_LANE1_CMP(<)
FL_LANE1_CMP(<=)
FL_LANE1_CMP(>)
FL_LANE1_CMP(>=)
FL_LANE1_CMP(==)
FL_LANE1_CMP(!=)
#undef FL_LANE1_CMP

template <class S> inline Lane1<S> operator-(Lane1<S> a) { return Lane1<S>(-a.v); }
template <class S> inline Lane1<S> select(bool m, Lane1<S> a, Lane1<S> b) { return m ? a : b; }
template <class S> inline Lane1<S> fl_min(Lane1<S> a, Lane1<S> b) { return fl_min(a.v, b.v); }
template <class S> inline Lane1<S> fl_max(Lane1<S> a, Lane1<S> b) { return fl_max(a.v, b.v); }
template <class S> inline Lane1<S> fl_abs(Lane1<S> a) { return fl_abs(a.v); }
template <class S> inline Lane1<S> fl_div(Lane1<S> a, Lane1<S> b) { return fl_div(a.v, b.v); }
template <class S> inline Lane1<S> fl_exp(Lane1<S> a) { return fl_exp(a.v); }
template <class S> inline Lane1<S> fl_exp_nonpos(Lane1<S> a) { return fl_exp_nonpos(a.v); }
template <class S> inline Lane1<S> fl_log(Lane1<S> a) { return fl_log(a.v); }
template <class S> inline Lane1<S> fl_log1p(Lane1<S> a) { return fl_log1p(a.v); }
template <class S> inline Lane1<S> fl_log1p_unit(Lane1<S> a) { return fl_log1p_unit(a.v); }
template <class S> inline Lane1<S> fl_tanh(Lane1<S> a) { return fl_tanh(a.v); }
template <class S> inline Lane1<S> fl_expm1(Lane1<S> a) { return fl_expm1(a.v); }
template <class S> inline Lane1<S> fl_sqrt(Lane1<S> a) { return fl_sqrt(a.v); }
template <class S> inline Lane1<S> fl_pow(Lane1<S> a, Lane1<S> b) { return fl_pow(a.v, b.v); }
template <class S> inline Lane1<S> fl_fma(Lane1<S> a, Lane1<S> b, Lane1<S> c) { return fl_fma(a.v, b.v, c.v); }
template <class S> inline S hsum(Lane1<S> a) { return a.v; }
template <class S> inline S hmax(Lane1<S> a) { return a.v; }
// Adds the lanes of v to a double accumulator (loss sums are kept in double).
template <class S> inline void widen_add(Lane1<double>& acc, Lane1<S> v) { acc.v += double(v.v); }

FL_NAMESPACE_END
