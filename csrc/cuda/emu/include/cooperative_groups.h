// cooperative_groups::this_cluster() of the Hopper cluster plan, emulated (test build only):
// the blocks of a cluster run together, cluster.sync() is a barrier over all their threads and
// map_shared_rank gives the same shared variable in another block of the cluster.
#pragma once

#include "../emulator.h"

namespace cooperative_groups {

class cluster_group {
 public:
  unsigned block_rank() const { return fl_emu::cluster_rank(); }
  unsigned num_blocks() const { return fl_emu::cluster_size(); }
  // The call site names the barrier in error messages (GCC/Clang builtins, evaluated at the caller).
  void sync(const char* file = __builtin_FILE(), int line = __builtin_LINE()) const {
    fl_emu::cluster_sync(fl_emu::Site{file, line});
  }
  template <class T> T* map_shared_rank(T* p, unsigned rank) const {
    return static_cast<T*>(fl_emu::map_shared_rank(const_cast<void*>(static_cast<const void*>(p)), rank));
  }
};

inline cluster_group this_cluster() { return cluster_group{}; }

}  // namespace cooperative_groups
