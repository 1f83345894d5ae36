// The scalar "ISA": one-lane vectors and the C library's math. The reference for the SIMD ISAs
// and the fallback on CPUs with none of them.
#pragma once

#include "vec_scalar.h"

FL_NAMESPACE_BEGIN
using Vf = Lane1<float>;
using Vd = Lane1<double>;
inline void stream_fence() {}
FL_NAMESPACE_END
