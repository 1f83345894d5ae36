// launch_rowwise for __nv_bfloat16 inputs (one translation unit per dtype keeps parallel builds short).
#include "rowwise.cuh"

namespace fastloss::cuda {
template cudaError_t launch_rowwise<__nv_bfloat16>(const RowwiseArgs&, cudaStream_t);
}  // namespace fastloss::cuda
