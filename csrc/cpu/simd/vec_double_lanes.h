// float64 transcendental functions of the SIMD types, lane by lane through the C library
// (<= 1 ulp). float64 inputs are correctness-first; their passes are memory-bound except exp.
// lanewise(a, b, fn) also serves float32 pow (vmath_f32.h's FL_VMATH_F32).
#pragma once

FL_NAMESPACE_BEGIN

template <class Vd, class F> inline Vd lanewise(Vd v, F fn) {
  alignas(64) double lanes[Vd::lanes];
  v.lanes_to(lanes);
  for (int i = 0; i < Vd::lanes; ++i) lanes[i] = fn(lanes[i]);
  return Vd::from_lanes(lanes);
}

template <class V, class F> inline V lanewise(V a, V b, F fn) {
  using S = typename V::scalar;
  alignas(64) S la[V::lanes], lb[V::lanes];
  a.lanes_to(la);
  b.lanes_to(lb);
  for (int i = 0; i < V::lanes; ++i) la[i] = fn(la[i], lb[i]);
  return V::from_lanes(la);
}

#define FL_DOUBLE_LANEWISE(Vd)                                                                   \
  inline Vd fl_exp(Vd v) { return lanewise(v, [](double d) { return fl_exp(d); }); }           \
  inline Vd fl_exp_nonpos(Vd v) { return lanewise(v, [](double d) { return fl_exp(d); }); }    \
  inline Vd fl_log(Vd v) { return lanewise(v, [](double d) { return fl_log(d); }); }           \
  inline Vd fl_log1p(Vd v) { return lanewise(v, [](double d) { return fl_log1p(d); }); }       \
  inline Vd fl_log1p_unit(Vd v) { return lanewise(v, [](double d) { return fl_log1p(d); }); } \
  inline Vd fl_tanh(Vd v) { return lanewise(v, [](double d) { return fl_tanh(d); }); }          \
  inline Vd fl_expm1(Vd v) { return lanewise(v, [](double d) { return fl_expm1(d); }); }        \
  inline Vd fl_pow(Vd a, Vd b) { return lanewise(a, b, [](double x, double y) { return fl_pow(x, y); }); }

FL_NAMESPACE_END
