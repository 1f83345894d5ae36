// Persistent workers woken per call; chunks are claimed from one atomic counter (the dynamic
// schedule the OpenMP build uses). Never destroyed: the workers wait forever, and exiting the
// process with them blocked is fine, unlike joining them from a static destructor.
#include "thread_pool.h"

#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace fastloss {
namespace {

struct Pool {
  std::mutex m;
  std::condition_variable start, done;
  int workers = 0;
  uint64_t generation = 0;  // one per job; workers run each job they have not seen
  int team = 0;             // threads taking part in the current job, caller included
  int running = 0;          // workers still inside the current job
  ChunkFn fn = nullptr;
  void* ctx = nullptr;
  int64_t chunks = 0;
  std::atomic<int64_t> next{0};

  void drain(int id) {
    for (int64_t k; (k = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) fn(ctx, k, id);
  }

  void loop(int id) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      start.wait(lock, [&] { return generation != seen; });
      seen = generation;
      if (id >= team) continue;
      lock.unlock();
      drain(id);
      lock.lock();
      if (--running == 0) done.notify_one();
    }
  }
};

std::mutex g_busy;            // one job at a time
Pool* g_pool = nullptr;       // guarded by g_busy
pid_t g_pid = 0;              // a forked child has none of its parent's workers: it starts a new pool

}  // namespace

void pool_run(int64_t chunks, int threads, ChunkFn fn, void* ctx) {
  std::unique_lock<std::mutex> busy(g_busy, std::try_to_lock);
  if (threads <= 1 || chunks <= 1 || !busy.owns_lock()) {
    for (int64_t k = 0; k < chunks; ++k) fn(ctx, k, 0);
    return;
  }
  if (!g_pool || g_pid != getpid()) {
    g_pool = new Pool;  // the old one (a parent's, after fork) is left as it is
    g_pid = getpid();
  }
  Pool& p = *g_pool;
  const int team = int(threads < chunks ? threads : chunks);
  std::unique_lock<std::mutex> lock(p.m);
  while (p.workers < team - 1) {
    const int id = ++p.workers;
    std::thread([&p, id] { p.loop(id); }).detach();
  }
  p.fn = fn;
  p.ctx = ctx;
  p.chunks = chunks;
  p.next.store(0, std::memory_order_relaxed);
  p.team = team;
  p.running = team - 1;
  ++p.generation;
  lock.unlock();
  p.start.notify_all();
  p.drain(0);
  lock.lock();
  p.done.wait(lock, [&] { return p.running == 0; });
}

}  // namespace fastloss
