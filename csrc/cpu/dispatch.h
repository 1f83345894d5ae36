// Run-time choice of the instruction set and thread count, and the checked C entry points that
// the Python module and the kernel-table capsule both call.
#pragma once

#include <string>
#include <vector>

#include "../fastloss/kernels.h"

namespace fastloss {

// The ISA in use, chosen at first use: FASTLOSS_CPU_ISA if set (an unavailable one is an error,
// reported by every call), else the best the CPU supports. Throws std::invalid_argument then.
const char* current_isa();
std::vector<std::string> available_isas();  // best first; always ends with "scalar"
void set_isa(const std::string& name);      // std::invalid_argument if unknown or unsupported here
void set_num_threads(int n);
int get_num_threads();

// Test hook: the current ISA's vector math on float32 (f: 0 exp, 1 log, 2 log1p, 3 tanh, 4 log1p_unit).
void vector_math(int f, int dtype, const void* a, const void* b, const void* c, void* out, int64_t n);

extern "C" int fastloss_rowwise(const FlRowwiseArgs* args, double* total, char* error, size_t error_size);
extern "C" int fastloss_pointwise(const FlPointwiseArgs* args, double* total, char* error, size_t error_size);
extern const FlKernelTable kernel_table;

}  // namespace fastloss
