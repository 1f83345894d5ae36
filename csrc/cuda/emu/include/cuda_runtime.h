// See cuda_runtime_api.h (test build only).
#pragma once

#include "cuda_runtime_api.h"
