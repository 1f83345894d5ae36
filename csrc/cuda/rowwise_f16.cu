// launch_rowwise for __half inputs (one translation unit per dtype keeps parallel builds short).
#include "rowwise.cuh"

namespace fastloss::cuda {
template cudaError_t launch_rowwise<__half>(const RowwiseArgs&, cudaStream_t);
}  // namespace fastloss::cuda
