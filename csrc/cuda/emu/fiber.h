// User-space threads for the emulator: a stack and a saved context per emulated CUDA thread,
// switched explicitly (never preempted). x86-64 uses a register-only switch (a few ns; ucontext
// makes a system call per switch); other machines use ucontext. Under AddressSanitizer every
// switch is announced to it (__sanitizer_start/finish_switch_fiber).
#pragma once

#include <cstddef>

namespace fl_emu {

struct Stack {
  void* base = nullptr;  // lowest usable address (a guard page lies below it)
  std::size_t size = 0;
};

#if defined(__x86_64__) && !defined(FL_EMU_UCONTEXT)
struct Context {
  void* sp = nullptr;    // the saved stack pointer (registers are pushed on the stack)
  void* fake = nullptr;  // AddressSanitizer's fake stack of this context
  const Stack* stack = nullptr;  // null: the OS thread's own stack
};
#else
}  // namespace fl_emu
#include <ucontext.h>
namespace fl_emu {
struct Context {
  ucontext_t uc;
  void* fake = nullptr;
  const Stack* stack = nullptr;
};
#endif

// Prepares c to run entry(arg) on `stack` when first switched to; entry must call
// finish_switch() first and must never return.
void init_context(Context& c, const Stack& stack, void (*entry)(void*), void* arg);
// Saves the running context into `from` and resumes `to`. `finished`: `from` will never run
// again (its sanitizer state can go).
void switch_context(Context& from, Context& to, bool finished);
void finish_switch();

// Stacks with a guard page, cached per OS thread for reuse.
Stack acquire_stack();
void release_stack(const Stack& s);

}  // namespace fl_emu
