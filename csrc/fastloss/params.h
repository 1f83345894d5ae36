// Loss ids and the scalar loss parameters (LossParams), generated at build time from
// python/fastloss/_spec.py by tools/gen_losses.py: the only list of losses and options there is.
// Plain C layout so it can cross the PyCapsule ABI (kernels.h) and be copied to a GPU.
#pragma once

#include "fastloss_generated/loss_table.h"
