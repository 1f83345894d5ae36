// The process-wide DeviceErrors record (pinned host memory mapped into every device's address space).
#pragma once

#include "launch.h"

namespace fastloss::cuda {

// Device address of the record, allocated on first use; null when no CUDA device can map it.
DeviceErrors* device_errors();

// If a kernel has reported a bad target since the last call: clears the record, stores what it
// said and returns true. Never synchronises: a kernel still running reports at a later call.
bool take_device_error(int& loss_id, long long& index);

}  // namespace fastloss::cuda
