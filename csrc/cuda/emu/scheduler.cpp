// The emulated execution of one launch: blocks (or the blocks of a cluster) one after another in a
// seeded shuffled order; within them every thread a fiber, resumed in a seeded random order each
// time it can run (uniform, or favouring the warp released last), switching only where CUDA
// synchronises. See emulator.h for what fails.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "emulator.h"
#include "fiber.h"
#include "include/cuda_runtime_api.h"

thread_local uint3 threadIdx;
thread_local uint3 blockIdx;
thread_local dim3 blockDim;
thread_local dim3 gridDim;

namespace fl_emu {

namespace {

constexpr std::size_t kStaticSharedLimit = 48 * 1024;
constexpr std::size_t kSharedOptin = 227 * 1024;  // per block, as an H100's opt-in limit

struct Rng {  // splitmix64
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return std::size_t(next() % n); }
};

enum class State : unsigned char { kRunnable, kBarrier, kWarp, kCluster, kDone };

struct Block;
struct Fiber {
  Context ctx;
  Stack stack;
  uint3 tid;
  unsigned linear, lane, warp;
  Block* block;
  State state = State::kRunnable;
  Site site{nullptr, 0};
  // a pending warp collective
  Collective kind{};
  unsigned mask = 0;
  std::uint64_t value = 0, result = 0;
  int b = 0, width = 32;
};

struct WarpOp {
  Site site;
  Collective kind;
  unsigned mask, arrived;
};

struct SharedAlloc {
  const void* key;  // null: the dynamic shared memory
  char* p;
  std::size_t bytes;
};

struct Block {
  uint3 idx;
  unsigned rank = 0;  // in its cluster
  std::vector<Fiber*> threads;
  unsigned done = 0, at_barrier = 0;
  Site barrier_site{nullptr, 0};
  std::vector<std::vector<WarpOp>> pending;  // per warp
  std::vector<SharedAlloc> shared;
  std::size_t shared_bytes = 0;
};

struct Run {
  const LaunchSpec* spec;
  std::vector<std::unique_ptr<Block>> blocks;
  std::vector<std::unique_ptr<Fiber>> fibers;
  std::vector<Fiber*> runnable;
  Rng rng;
  std::string error;
  unsigned at_cluster = 0;
  Site cluster_site{nullptr, 0};
  Context host;
  Fiber* current = nullptr;
};

thread_local Run* t_run = nullptr;
std::uint64_t g_seed = 0;
bool g_seed_set = false;
std::atomic<unsigned long long> g_launches{0}, g_cluster_launches{0};

bool same_site(Site a, Site b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

std::string where(Site s) {
  const char* f = std::strrchr(s.file, '/');
  return std::string(f ? f + 1 : s.file) + ":" + std::to_string(s.line);
}

std::string who(const Fiber* f) {
  return "thread (" + std::to_string(f->tid.x) + "," + std::to_string(f->tid.y) + "," + std::to_string(f->tid.z) +
         ") of block (" + std::to_string(f->block->idx.x) + "," + std::to_string(f->block->idx.y) + "," +
         std::to_string(f->block->idx.z) + ")";
}

const char* collective_name(Collective k) {
  switch (k) {
    case Collective::kSyncwarp: return "__syncwarp";
    case Collective::kBallot: return "__ballot_sync";
    case Collective::kShflIdx: return "__shfl_sync";
    case Collective::kShflUp: return "__shfl_up_sync";
    case Collective::kShflDown: return "__shfl_down_sync";
    case Collective::kShflXor: return "__shfl_xor_sync";
  }
  return "?";
}

std::string hex(unsigned v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

Run& run() {
  if (t_run == nullptr || t_run->current == nullptr) {
    std::fprintf(stderr, "fastloss CUDA emulator: a device function was called outside a kernel\n");
    std::abort();
  }
  return *t_run;
}

void suspend(Fiber* f, bool finished = false) { switch_context(f->ctx, t_run->host, finished); }

[[noreturn]] void fail(const std::string& message) {
  Run& r = run();
  if (r.error.empty()) r.error = message;
  for (;;) suspend(r.current);  // never resumed: the launch is abandoned
}

void make_runnable(Fiber* f) {
  f->state = State::kRunnable;
  t_run->runnable.push_back(f);
}

void fiber_main(void* arg) {
  finish_switch();
  auto* f = static_cast<Fiber*>(arg);
  Run& r = *t_run;
  r.spec->body(r.spec->ctx);
  // The thread returns from the kernel.
  Block& b = *f->block;
  if (b.at_barrier > 0)
    fail(who(f) + " exited while " + std::to_string(b.at_barrier) + " thread(s) of its block wait at __syncthreads() at " +
         where(b.barrier_site));
  if (r.at_cluster > 0)
    fail(who(f) + " exited while threads of its cluster wait at cluster.sync() at " + where(r.cluster_site));
  for (const WarpOp& op : b.pending[f->warp])
    if (op.mask >> f->lane & 1u)
      fail(who(f) + " (lane " + std::to_string(f->lane) + ") exited while lanes of its warp wait for it at " +
           collective_name(op.kind) + " at " + where(op.site) + " with mask " + hex(op.mask));
  f->state = State::kDone;
  ++b.done;
  suspend(f, true);
  std::abort();  // unreachable: a finished fiber is never resumed
}

// The source lane of `lane` in a shuffle (PTX shfl.sync semantics, as CUDA's __shfl_*_sync call it).
unsigned source_lane(Collective kind, unsigned lane, int b, int width) {
  const unsigned segmask = unsigned(32 - width) & 31u;
  const unsigned clamp = kind == Collective::kShflUp ? 0u : 31u;
  const int max_lane = int((lane & segmask) | (clamp & ~segmask));
  const int min_lane = int(lane & segmask);
  const int bv = b & 31;
  int j = int(lane);
  bool ok = false;
  switch (kind) {
    case Collective::kShflIdx: j = min_lane | (bv & int(~segmask & 31u)); ok = j <= max_lane; break;
    case Collective::kShflUp: j = int(lane) - bv; ok = j >= max_lane; break;
    case Collective::kShflDown: j = int(lane) + bv; ok = j <= max_lane; break;
    case Collective::kShflXor: j = int(lane) ^ bv; ok = j <= max_lane; break;
    default: break;
  }
  return ok ? unsigned(j) : lane;
}

void complete(Block& b, unsigned warp, const WarpOp& op) {
  Fiber* lanes[32] = {};
  for (unsigned l = 0; l < 32; ++l)
    if (op.mask >> l & 1u) lanes[l] = b.threads[warp * 32 + l];
  unsigned ballot = 0;
  for (unsigned l = 0; l < 32; ++l)
    if (lanes[l] && lanes[l]->value) ballot |= 1u << l;
  for (unsigned l = 0; l < 32; ++l) {
    Fiber* f = lanes[l];
    if (!f) continue;
    if (op.kind == Collective::kBallot) {
      f->result = ballot;
    } else if (op.kind == Collective::kSyncwarp) {
      f->result = 0;
    } else {
      const unsigned j = source_lane(op.kind, l, f->b, f->width);
      if (!(op.mask >> j & 1u))
        fail(who(f) + " (lane " + std::to_string(l) + ") reads lane " + std::to_string(j) + " in " +
             collective_name(op.kind) + " at " + where(op.site) + ", which is not in the mask " + hex(op.mask));
      f->result = lanes[j]->value;
    }
  }
  for (unsigned l = 0; l < 32; ++l)
    if (lanes[l]) make_runnable(lanes[l]);
}

}  // namespace

// ---- device-side entry points ---------------------------------------------------------------------


void threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

void trap(Site site) { fail(who(run().current) + " called __trap() at " + where(site)); }

void syncthreads(Site site) {
  Run& r = run();
  Fiber* f = r.current;
  Block& b = *f->block;
  if (b.done > 0)
    fail(who(f) + " reached __syncthreads() at " + where(site) + " after " + std::to_string(b.done) +
         " thread(s) of its block exited: the barrier can never complete");
  if (b.at_barrier > 0 && !same_site(b.barrier_site, site))
    fail(who(f) + " reached __syncthreads() at " + where(site) + " while other threads of its block wait at " +
         "__syncthreads() at " + where(b.barrier_site));
  b.barrier_site = site;
  f->state = State::kBarrier;
  f->site = site;
  if (++b.at_barrier == b.threads.size()) {
    b.at_barrier = 0;
    for (Fiber* t : b.threads) make_runnable(t);
  }
  suspend(f);
}

std::uint64_t warp_collective(Site site, Collective kind, unsigned mask, std::uint64_t value, int b, int width) {
  Run& r = run();
  Fiber* f = r.current;
  Block& blk = *f->block;
  const std::string op_name = collective_name(kind);
  if (!(mask >> f->lane & 1u))
    fail(who(f) + " (lane " + std::to_string(f->lane) + ") calls " + op_name + " at " + where(site) + " with mask " +
         hex(mask) + ", which omits the calling lane");
  if (width < 1 || width > 32 || (width & (width - 1)) != 0)
    fail(who(f) + " calls " + op_name + " at " + where(site) + " with width " + std::to_string(width) +
         " (a power of two up to 32 is required)");
  for (unsigned l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    const std::size_t t = std::size_t(f->warp) * 32 + l;
    if (t >= blk.threads.size())
      fail(who(f) + " calls " + op_name + " at " + where(site) + " with mask " + hex(mask) + ", which names lane " +
           std::to_string(l) + " that this block of " + std::to_string(blk.threads.size()) + " threads does not have");
    if (blk.threads[t]->state == State::kDone)
      fail(who(f) + " calls " + op_name + " at " + where(site) + " with mask " + hex(mask) + ", which names lane " +
           std::to_string(l) + " that has exited");
  }
  std::vector<WarpOp>& pending = blk.pending[f->warp];
  WarpOp* op = nullptr;
  for (WarpOp& o : pending) {
    if (!(o.mask & mask)) continue;
    if (o.mask != mask || o.kind != kind || !same_site(o.site, site))
      fail(who(f) + " (lane " + std::to_string(f->lane) + ") calls " + op_name + " at " + where(site) + " with mask " +
           hex(mask) + " while lanes of its warp wait at " + collective_name(o.kind) + " at " + where(o.site) +
           " with mask " + hex(o.mask));
    op = &o;
  }
  if (op == nullptr) {
    pending.push_back(WarpOp{site, kind, mask, 0});
    op = &pending.back();
  }
  op->arrived |= 1u << f->lane;
  f->state = State::kWarp;
  f->site = site;
  f->kind = kind;
  f->mask = mask;
  f->value = value;
  f->b = b;
  f->width = width;
  if (op->arrived == mask) {
    const WarpOp done = *op;
    pending.erase(pending.begin() + (op - pending.data()));
    complete(blk, f->warp, done);
  }
  suspend(f);
  return f->result;
}

void* block_static(const void* key, std::size_t bytes, std::size_t align) {
  Block& b = *run().current->block;
  for (const SharedAlloc& a : b.shared)
    if (a.key == key) return a.p;
  // Exactly the declared size, so that AddressSanitizer sees an index past the end; filled with
  // 0xFF bytes (NaN in every floating-point type) as shared memory is not initialised on a GPU.
  char* p = static_cast<char*>(std::aligned_alloc(align < 16 ? 16 : align, (bytes + 15) / 16 * 16));
  std::memset(p, 0xff, (bytes + 15) / 16 * 16);
  b.shared.push_back(SharedAlloc{key, p, bytes});
  b.shared_bytes += bytes;
  if (b.shared_bytes > kSharedOptin) fail("static plus dynamic shared memory exceeds 227 KiB per block");
  if (bytes > kStaticSharedLimit) fail("a static __shared__ variable exceeds 48 KiB");
  return p;
}

void* dynamic_shared() {
  Block& b = *run().current->block;
  for (const SharedAlloc& a : b.shared)
    if (a.key == nullptr) return a.p;
  fail(who(run().current) + " uses dynamic shared memory but the launch gave none");
}

unsigned cluster_rank() { return run().current->block->rank; }
unsigned cluster_size() {
  const dim3& c = run().spec->cluster;
  return c.x * c.y * c.z;
}

void cluster_sync(Site site) {
  Run& r = run();
  Fiber* f = r.current;
  unsigned total = 0, done = 0;
  for (const auto& b : r.blocks) {
    total += unsigned(b->threads.size());
    done += b->done;
  }
  if (done > 0)
    fail(who(f) + " reached cluster.sync() at " + where(site) + " after " + std::to_string(done) +
         " thread(s) of its cluster exited");
  if (r.at_cluster > 0 && !same_site(r.cluster_site, site))
    fail(who(f) + " reached cluster.sync() at " + where(site) + " while threads of its cluster wait at " +
         where(r.cluster_site));
  r.cluster_site = site;
  f->state = State::kCluster;
  f->site = site;
  if (++r.at_cluster == total) {
    r.at_cluster = 0;
    for (const auto& b : r.blocks)
      for (Fiber* t : b->threads) make_runnable(t);
  }
  suspend(f);
}

void* map_shared_rank(void* p, unsigned rank) {
  Run& r = run();
  Block& mine = *r.current->block;
  if (rank >= r.blocks.size())
    fail(who(r.current) + " maps shared memory of cluster rank " + std::to_string(rank) + " in a cluster of " +
         std::to_string(r.blocks.size()) + " blocks");
  for (const SharedAlloc& a : mine.shared) {
    char* c = static_cast<char*>(p);
    if (c < a.p || c >= a.p + a.bytes) continue;
    Block& other = *r.blocks[rank];
    for (const SharedAlloc& o : other.shared)
      if (o.key == a.key) return o.p + (c - a.p);
    fail(who(r.current) + " maps a shared variable that block rank " + std::to_string(rank) + " has not declared");
  }
  fail(who(r.current) + " maps an address that is not in its block's shared memory");
}

// ---- the host side of a launch ------------------------------------------------------------------

LaunchCounts launch_counts() { return LaunchCounts{g_launches.load(), g_cluster_launches.load()}; }

void set_seed(std::uint64_t seed) {
  g_seed = seed;
  g_seed_set = true;
}

std::uint64_t seed() {
  if (!g_seed_set) {
    const char* env = std::getenv("FASTLOSS_CUDA_EMULATOR_SEED");
    g_seed = env ? std::strtoull(env, nullptr, 0) : 0x5eedull;
    g_seed_set = true;
  }
  return g_seed;
}

namespace {

// Runs the blocks `first .. first + count` (one block, or one cluster) to completion; returns the
// error message, empty on success.
std::string run_group(const LaunchSpec& spec, const std::vector<uint3>& ids) {
  Run r;
  r.spec = &spec;
  const uint3& id0 = ids.front();
  r.rng.s = seed() ^ (0x100000001b3ull * (id0.x + 1)) ^ (0xc2b2ae3d27d4eb4full * (id0.y + 1)) ^
            (0x165667b19e3779f9ull * (id0.z + 1)) ^ (std::uint64_t(spec.block.x) << 40);
  const unsigned nthreads = spec.block.x * spec.block.y * spec.block.z;
  Run* outer = t_run;
  t_run = &r;
  blockDim = spec.block;
  gridDim = spec.grid;
  for (unsigned k = 0; k < ids.size(); ++k) {
    auto b = std::make_unique<Block>();
    b->idx = ids[k];
    b->rank = k;
    b->pending.resize((nthreads + 31) / 32);
    if (spec.dynamic_smem > 0) {
      char* p = static_cast<char*>(std::aligned_alloc(16, (spec.dynamic_smem + 15) / 16 * 16));
      std::memset(p, 0xff, (spec.dynamic_smem + 15) / 16 * 16);
      b->shared.push_back(SharedAlloc{nullptr, p, spec.dynamic_smem});
      b->shared_bytes = spec.dynamic_smem;
    }
    for (unsigned t = 0; t < nthreads; ++t) {
      auto f = std::make_unique<Fiber>();
      f->tid = uint3{t % spec.block.x, t / spec.block.x % spec.block.y, t / (spec.block.x * spec.block.y)};
      f->linear = t;
      f->lane = t % 32;
      f->warp = t / 32;
      f->block = b.get();
      f->stack = acquire_stack();
      init_context(f->ctx, f->stack, &fiber_main, f.get());
      b->threads.push_back(f.get());
      r.runnable.push_back(f.get());
      r.fibers.push_back(std::move(f));
    }
    r.blocks.push_back(std::move(b));
  }
  // Half of the groups pick any runnable thread; the other half mostly one of the 32 released last,
  // so that a warp runs far ahead of the rest of its block (races between warps show).
  const bool run_ahead = r.rng.below(2) == 1;
  while (!r.runnable.empty() && r.error.empty()) {
    const std::size_t n = r.runnable.size();
    const std::size_t i = run_ahead && r.rng.below(8) != 0 ? n - 1 - r.rng.below(n < 32 ? n : 32) : r.rng.below(n);
    Fiber* f = r.runnable[i];
    r.runnable[i] = r.runnable.back();
    r.runnable.pop_back();
    r.current = f;
    threadIdx = f->tid;
    blockIdx = f->block->idx;
    switch_context(r.host, f->ctx, false);
    r.current = nullptr;
  }
  if (r.error.empty()) {
    for (const auto& f : r.fibers) {
      if (f->state == State::kDone) continue;
      const char* what = f->state == State::kBarrier ? "__syncthreads()"
                         : f->state == State::kCluster ? "cluster.sync()"
                                                       : collective_name(f->kind);
      r.error = "deadlock: " + who(f.get()) + " waits forever at " + what + " at " + where(f->site) +
                (f->state == State::kWarp ? " with mask " + hex(f->mask) : std::string());
      break;
    }
  }
  for (const auto& f : r.fibers) release_stack(f->stack);
  for (const auto& b : r.blocks)
    for (const SharedAlloc& a : b->shared) std::free(a.p);
  t_run = outer;
  return r.error;
}

}  // namespace

cudaError_t run_launch(const LaunchSpec& spec) {
  const unsigned long long threads = 1ull * spec.block.x * spec.block.y * spec.block.z;
  const unsigned long long blocks = 1ull * spec.grid.x * spec.grid.y * spec.grid.z;
  if (threads == 0 || threads > 1024 || blocks == 0 || spec.grid.x > 0x7fffffffu || spec.grid.y > 65535 ||
      spec.grid.z > 65535 || spec.block.z > 64)
    return launch_failed(cudaErrorInvalidConfiguration,
                         ("invalid launch configuration: grid (" + std::to_string(spec.grid.x) + "," +
                          std::to_string(spec.grid.y) + "," + std::to_string(spec.grid.z) + "), block (" +
                          std::to_string(spec.block.x) + "," + std::to_string(spec.block.y) + "," +
                          std::to_string(spec.block.z) + ")")
                             .c_str());
  cudaFuncAttributes attr{};
  func_get_attributes(&attr, spec.kernel);
  if (spec.dynamic_smem > std::size_t(attr.maxDynamicSharedSizeBytes))
    return launch_failed(cudaErrorInvalidValue,
                         ("a launch asks for " + std::to_string(spec.dynamic_smem) +
                          " bytes of dynamic shared memory; this kernel's limit is " +
                          std::to_string(attr.maxDynamicSharedSizeBytes) +
                          " (over 48 KiB needs cudaFuncSetAttribute(MaxDynamicSharedMemorySize))")
                             .c_str());
  const dim3 c = spec.cluster;
  const unsigned csize = c.x * c.y * c.z;
  if (csize > 1 && (c.y != 1 || c.z != 1 || csize > 8 || spec.grid.x % c.x != 0 || attr.binaryVersion < 90))
    return launch_failed(cudaErrorInvalidValue, "invalid thread-block cluster for this grid");
  ++g_launches;
  if (csize > 1) ++g_cluster_launches;
  // Blocks in a seeded shuffled order (a kernel must not depend on block order).
  std::vector<uint3> order;
  order.reserve(blocks / csize);
  for (unsigned z = 0; z < spec.grid.z; ++z)
    for (unsigned y = 0; y < spec.grid.y; ++y)
      for (unsigned x = 0; x < spec.grid.x; x += csize) order.push_back(uint3{x, y, z});
  Rng rng{seed() ^ (blocks * 0x9e3779b97f4a7c15ull) ^ threads};
  for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<uint3> ids(csize);
  for (const uint3& first : order) {
    for (unsigned k = 0; k < csize; ++k) ids[k] = uint3{first.x + k, first.y, first.z};
    std::string error = run_group(spec, ids);
    if (!error.empty()) return launch_failed(cudaErrorLaunchFailure, ("fastloss CUDA emulator: " + error).c_str());
  }
  return cudaSuccess;
}

}  // namespace fl_emu
