// launch_rowwise for double inputs (one translation unit per dtype keeps parallel builds short).
#include "rowwise.cuh"

namespace fastloss::cuda {
template cudaError_t launch_rowwise<double>(const RowwiseArgs&, cudaStream_t);
}  // namespace fastloss::cuda
