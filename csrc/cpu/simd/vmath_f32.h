// Vectorised float32 exp, log, log1p and tanh, written once against a vector type V that
// provides fl_fma, vround (to nearest), scale2(p, n) = p * 2^n and frexp_sqrt2(x, m, e)
// (x = m * 2^e, m in [sqrt(1/2), sqrt(2)), for finite x > 0 including subnormals).
//
// Maximum error against float64, measured over every 7th float32 bit pattern in the domain
// (613 million inputs; tests/test_native_vector_math.py re-checks 2 million random ones per ISA),
// AVX-512 and AVX2 identical (same operations, same order):
//   vexp   x in [-104, 89]               0.88 ulp  (overflow to inf, gradual underflow, exp(-inf) = 0)
//   vlog   x >= 0, incl. subnormals      0.81 ulp  (log(0) = -inf, log(x < 0) = NaN, log(inf) = inf)
//   vlog1p u >= -1                       1.44 ulp
//   vlog1p_unit u in [0, 1]              1.96 ulp  (cheaper: one fl_div, no exponent split)
//   vtanh  all x                         1.36 ulp
//   vexpm1 x in [-104, 89]               1.44 ulp  (polynomial on |x| < 0.5, vexp(x) - 1 beyond)
// (random inputs, as the test checks: sigmoid 2.52, softplus 2.55, rsqrt 1.47 ulp, built on these)
// (The scalar ISA uses glibc: exp 0.50, log 0.82, log1p 0.83, tanh 2.17 ulp.)
// NaN propagates through all of them. Coefficients: exp(r) = 1 + r + r^2 P(r) on |r| <= ln2/2 with
// P of degree 4 fitted for minimal relative error (3.8e-9 before rounding: one FMA less than the
// degree-7 Taylor series it replaced); Cephes' minimax polynomials for log(1+f) and tanh on
// |x| < 0.625.
#pragma once

FL_NAMESPACE_BEGIN

// exp(x) for x in [-104, 88.8] or NaN (the callers clamp): Cody-Waite reduction x = n ln2 + r.
template <class V> inline V vexp_reduced(V x) {
  V n = vround(x * V(1.44269504088896341f));
  V r = fl_fma(n, V(-0.693359375f), x);
  r = fl_fma(n, V(2.12194440e-4f), r);
  V p = V(1.38146139e-3f);
  p = fl_fma(p, r, V(8.36871006e-3f));
  p = fl_fma(p, r, V(4.16683890e-2f));
  p = fl_fma(p, r, V(1.66665211e-1f));
  p = fl_fma(p, r, V(4.99999940e-1f));
  p = fl_fma(p, r, V(1.0f));
  p = fl_fma(p, r, V(1.0f));
  return scale2(p, n);
}

template <class V> inline V vexp(V x) {
  return vexp_reduced(fl_min(V(88.8f), fl_max(V(-104.0f), x)));  // beyond: inf / 0 after scale2; NaN passes
}

// exp(x) for x <= 0 (softmax's z - max, focal's -|x|): the same values as vexp, one clamp less.
template <class V> inline V vexp_nonpos(V x) { return vexp_reduced(fl_max(V(-104.0f), x)); }

template <class V> inline V vlog(V x) {
  V m, e;
  frexp_sqrt2(x, m, e);
  V f = m - V(1.0f);
  V z = f * f;
  V p = V(7.0376836292e-2f);
  p = fl_fma(p, f, V(-1.1514610310e-1f));
  p = fl_fma(p, f, V(1.1676998740e-1f));
  p = fl_fma(p, f, V(-1.2420140846e-1f));
  p = fl_fma(p, f, V(1.4249322787e-1f));
  p = fl_fma(p, f, V(-1.6668057665e-1f));
  p = fl_fma(p, f, V(2.0000714765e-1f));
  p = fl_fma(p, f, V(-2.4999993993e-1f));
  p = fl_fma(p, f, V(3.3333331174e-1f));
  V y = f * z * p;
  y = fl_fma(e, V(-2.12194440e-4f), y);
  y = fl_fma(z, V(-0.5f), y);
  V r = fl_fma(e, V(0.693359375f), f + y);
  r = select(x == V(0.0f), V(-__builtin_inff()), r);
  r = select(x == V(__builtin_inff()), x, r);
  return select(x < V(0.0f), V(__builtin_nanf("")), select(x != x, x, r));
}

template <class V> inline V vlog1p(V u) {
  V w = V(1.0f) + u;
  // log(w) is exact for the rounded w; (u - (w - 1)) / w corrects for that rounding.
  V r = vlog(w) + (u - (w - V(1.0f))) / w;
  r = select(w == V(0.0f), V(-__builtin_inff()), r);
  return select(u == V(__builtin_inff()), u, r);
}

// log1p(u) for u in [0, 1] (NaN passes): 2 atanh(s) = 2 s (1 + z P(z)), s = u / (2 + u) <= 1/3,
// z = s^2 <= 1/9, P of degree 4 fitted for minimal relative error of the result (5.4e-10 before
// rounding; the degree-6 Taylor series 1/3 + z/5 + ... + z^6/15 it replaced left 2^-26); one
// fl_div, no exponent split, no special cases.
template <class V> inline V vlog1p_unit(V u) {
  V s = fl_div(u, V(2.0f) + u);
  V z = s * s;
  V p = V(1.21447794e-1f);
  p = fl_fma(p, z, V(1.07153706e-1f));
  p = fl_fma(p, z, V(1.43082991e-1f));
  p = fl_fma(p, z, V(1.99994445e-1f));
  p = fl_fma(p, z, V(3.33333373e-1f));
  return fl_fma(s + s, z * p, s + s);
}

// expm1(x) = x + x^2 Q(x) with Q the Taylor series of (expm1(x) - x) / x^2 to degree 8 on |x| < 0.5
// (truncation < 2^-34 relative there; the last step, one FMA onto the exact x, leaves ~0.5 ulp;
// x = -0 is kept as -0); vexp(x) - 1 beyond, where the subtraction is exact (Sterbenz) and vexp's
// error grows by at most e^0.5 / (e^0.5 - 1) = 2.5x in relative terms.
template <class V> inline V vexpm1(V x) {
  V q = V(2.75573192e-7f);
  q = fl_fma(q, x, V(2.75573192e-6f));
  q = fl_fma(q, x, V(2.48015873e-5f));
  q = fl_fma(q, x, V(1.98412698e-4f));
  q = fl_fma(q, x, V(1.38888889e-3f));
  q = fl_fma(q, x, V(8.33333333e-3f));
  q = fl_fma(q, x, V(4.16666667e-2f));
  q = fl_fma(q, x, V(1.66666667e-1f));
  q = fl_fma(q, x, V(0.5f));
  const V small = select(x == V(0.0f), x, fl_fma(x * x, q, x));
  return select(fl_abs(x) < V(0.5f), small, vexp(x) - V(1.0f));
}

template <class V> inline V vtanh(V x) {
  V a = fl_abs(x);
  V z = x * x;
  V p = V(-5.70498872745e-3f);
  p = fl_fma(p, z, V(2.06390887954e-2f));
  p = fl_fma(p, z, V(-5.37397155531e-2f));
  p = fl_fma(p, z, V(1.33314422036e-1f));
  p = fl_fma(p, z, V(-3.33332819422e-1f));
  V small = fl_fma(x * z, p, x);
  V big = V(1.0f) - V(2.0f) / (vexp(a + a) + V(1.0f));
  big = select(x < V(0.0f), -big, big);
  return select(a < V(0.625f), small, big);
}

// The float32 vocabulary of math_ops.h for a SIMD float type (the same in every ISA header).
// pow: the C library's powf per lane (<= 1 ulp), see lanewise in vec_double_lanes.h.
#define FL_VMATH_F32(Vf)                                                                         \
  inline Vf fl_exp(Vf v) { return vexp(v); }                                                     \
  inline Vf fl_exp_nonpos(Vf v) { return vexp_nonpos(v); }                                       \
  inline Vf fl_expm1(Vf v) { return vexpm1(v); }                                                 \
  inline Vf fl_log(Vf v) { return vlog(v); }                                                     \
  inline Vf fl_log1p(Vf v) { return vlog1p(v); }                                                 \
  inline Vf fl_log1p_unit(Vf v) { return vlog1p_unit(v); }                                       \
  inline Vf fl_tanh(Vf v) { return vtanh(v); }                                                   \
  inline Vf fl_pow(Vf a, Vf b) { return lanewise(a, b, [](float x, float y) { return fl_pow(x, y); }); }

FL_NAMESPACE_END
