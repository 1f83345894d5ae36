#include "fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define FL_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FL_EMU_ASAN 1
#endif
#endif

#ifdef FL_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace fl_emu {

namespace {

#ifdef FL_EMU_ASAN
constexpr std::size_t kStackSize = 512 * 1024;  // instrumented frames are several times larger
#else
constexpr std::size_t kStackSize = 128 * 1024;
#endif

thread_local std::vector<Stack> t_free_stacks;
thread_local Context* t_resumed = nullptr;  // the context a switch is resuming
#ifdef FL_EMU_ASAN
thread_local const void* t_host_bottom = nullptr;
thread_local std::size_t t_host_size = 0;
#endif

}  // namespace

Stack acquire_stack() {
  if (!t_free_stacks.empty()) {
    Stack s = t_free_stacks.back();
    t_free_stacks.pop_back();
    return s;
  }
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackSize + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "fastloss CUDA emulator: cannot map a %zu-byte fiber stack\n", kStackSize);
    std::abort();
  }
  mprotect(p, page, PROT_NONE);  // a stack overflow faults instead of overwriting a neighbour
  return Stack{static_cast<char*>(p) + page, kStackSize};
}

void release_stack(const Stack& s) {
#ifdef FL_EMU_ASAN
  // Frames of an abandoned fiber leave poisoned redzones behind; the next fiber starts clean.
  __asan_unpoison_memory_region(s.base, s.size);
#endif
  t_free_stacks.push_back(s);
}

void finish_switch() {
#ifdef FL_EMU_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(t_resumed ? t_resumed->fake : nullptr, &bottom, &size);
  if (t_host_bottom == nullptr && t_resumed && t_resumed->stack != nullptr) {
    t_host_bottom = bottom;  // the first switch away from the OS thread's stack tells where it is
    t_host_size = size;
  }
#endif
}

#if defined(__x86_64__) && !defined(FL_EMU_UCONTEXT)

// fl_emu_switch(void** save_sp, void* new_sp): pushes the callee-saved registers and the SSE/x87
// control words, saves rsp, loads the other stack and pops the same. A new stack is prepared so
// that the pops deliver entry (r13) and arg (r12) to fl_emu_start.
asm(R"(
  .text
  .globl fl_emu_switch
  .hidden fl_emu_switch
  .type fl_emu_switch,@function
fl_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fl_emu_switch, .-fl_emu_switch

  .globl fl_emu_start
  .hidden fl_emu_start
  .type fl_emu_start,@function
fl_emu_start:
  movq %r12, %rdi
  andq $-16, %rsp
  callq *%r13
  ud2
  .size fl_emu_start, .-fl_emu_start
)");

extern "C" void fl_emu_switch(void** save_sp, void* new_sp);
extern "C" void fl_emu_start();

void init_context(Context& c, const Stack& stack, void (*entry)(void*), void* arg) {
  auto top = reinterpret_cast<std::uintptr_t>(stack.base) + stack.size;
  auto* sp = reinterpret_cast<std::uint64_t*>(top & ~std::uintptr_t(15)) - 8;
  std::uint32_t control[2] = {0x1f80u, 0x037fu};  // default MXCSR and x87 control word
  __builtin_memcpy(&sp[0], control, 8);
  sp[1] = 0;                                           // r15
  sp[2] = 0;                                           // r14
  sp[3] = reinterpret_cast<std::uint64_t>(entry);      // r13
  sp[4] = reinterpret_cast<std::uint64_t>(arg);        // r12
  sp[5] = 0;                                           // rbx
  sp[6] = 0;                                           // rbp
  sp[7] = reinterpret_cast<std::uint64_t>(&fl_emu_start);  // return address
  c.sp = sp;
  c.fake = nullptr;
  c.stack = &stack;
}

static void raw_switch(Context& from, Context& to) { fl_emu_switch(&from.sp, to.sp); }

#else

namespace {
void ucontext_entry(unsigned hi_e, unsigned lo_e, unsigned hi_a, unsigned lo_a) {
  auto entry = reinterpret_cast<void (*)(void*)>((std::uintptr_t(hi_e) << 32) | lo_e);
  auto arg = reinterpret_cast<void*>((std::uintptr_t(hi_a) << 32) | lo_a);
  entry(arg);
}
}  // namespace

void init_context(Context& c, const Stack& stack, void (*entry)(void*), void* arg) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack.base;
  c.uc.uc_stack.ss_size = stack.size;
  c.uc.uc_link = nullptr;
  const auto e = reinterpret_cast<std::uintptr_t>(entry), a = reinterpret_cast<std::uintptr_t>(arg);
  makecontext(&c.uc, reinterpret_cast<void (*)()>(&ucontext_entry), 4, unsigned(e >> 32), unsigned(e),
              unsigned(a >> 32), unsigned(a));
  c.fake = nullptr;
  c.stack = &stack;
}

static void raw_switch(Context& from, Context& to) { swapcontext(&from.uc, &to.uc); }

#endif

void switch_context(Context& from, Context& to, bool finished) {
#ifdef FL_EMU_ASAN
  const void* bottom = to.stack ? to.stack->base : t_host_bottom;
  const std::size_t size = to.stack ? to.stack->size : t_host_size;
  __sanitizer_start_switch_fiber(finished ? nullptr : &from.fake, bottom, size);
#else
  (void)finished;
#endif
  t_resumed = &to;
  raw_switch(from, to);
  finish_switch();  // running as `from` again
}

}  // namespace fl_emu
