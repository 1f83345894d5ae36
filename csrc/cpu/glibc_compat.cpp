// FASTLOSS_PORTABLE on x86-64 glibc: binds the glibc symbols that this build machine's libraries
// (and the static libstdc++) would take at their newest version to the oldest one instead, so the
// wheel loads on glibc 2.17+ systems rather than only on the build machine's. The linker sends each
// reference through the __wrap_ function here (-Wl,--wrap=NAME, csrc/cpu/CMakeLists.txt); .symver
// names the old version. Same functions, older symbol versions: the math ones are the SVID-error
// wrappers of the same implementations, pthread's moved from libpthread into libc in 2.34.
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FL_OLD(ret, name, old, params, args)                     \
  ret fl_old_##name params;                                      \
  __asm__(".symver fl_old_" #name "," #name "@" old);            \
  ret __wrap_##name params { return fl_old_##name args; }

extern "C" {

FL_OLD(int, pthread_once, "GLIBC_2.2.5", (pthread_once_t * o, void (*f)(void)), (o, f))
FL_OLD(int, pthread_create, "GLIBC_2.2.5",
       (pthread_t * t, const pthread_attr_t* a, void* (*f)(void*), void* arg), (t, a, f, arg))
FL_OLD(int, pthread_detach, "GLIBC_2.2.5", (pthread_t t), (t))
FL_OLD(int, pthread_mutex_trylock, "GLIBC_2.2.5", (pthread_mutex_t * m), (m))
FL_OLD(int, pthread_join, "GLIBC_2.2.5", (pthread_t t, void** r), (t, r))
FL_OLD(int, pthread_key_create, "GLIBC_2.2.5", (pthread_key_t * k, void (*d)(void*)), (k, d))
FL_OLD(int, pthread_key_delete, "GLIBC_2.2.5", (pthread_key_t k), (k))
FL_OLD(void*, pthread_getspecific, "GLIBC_2.2.5", (pthread_key_t k), (k))
FL_OLD(int, pthread_setspecific, "GLIBC_2.2.5", (pthread_key_t k, const void* v), (k, v))
FL_OLD(double, exp, "GLIBC_2.2.5", (double x), (x))
FL_OLD(double, log, "GLIBC_2.2.5", (double x), (x))
FL_OLD(double, pow, "GLIBC_2.2.5", (double x, double y), (x, y))
FL_OLD(float, expf, "GLIBC_2.2.5", (float x), (x))
FL_OLD(float, logf, "GLIBC_2.2.5", (float x), (x))
FL_OLD(float, powf, "GLIBC_2.2.5", (float x, float y), (x, y))

// libstdc++ reads it to skip atomic reference counts in a single-threaded process (glibc 2.32+);
// 0 ("maybe threaded") always takes the atomic path, which is correct everywhere.
char __wrap___libc_single_threaded = 0;

// std::random_device's entropy sources in the static libstdc++ (glibc 2.25 / 2.36); fastloss
// never makes one, but the archive member is linked in. The getrandom system call does their job.
int __wrap_getentropy(void* buf, size_t n) {
  if (n > 256) {
    errno = EIO;
    return -1;
  }
  for (size_t got = 0; got < n;) {
    long r = syscall(SYS_getrandom, static_cast<char*>(buf) + got, n - got, 0);
    if (r < 0 && errno != EINTR) return -1;
    if (r > 0) got += size_t(r);
  }
  return 0;
}
uint32_t __wrap_arc4random(void) {
  uint32_t v = 0;
  while (__wrap_getentropy(&v, sizeof v) != 0) {
  }
  return v;
}

// A thread_local with a destructor (dispatch.cpp's per-thread buffers) makes the compiler register
// the destructor with __cxa_thread_atexit, which the static libstdc++ forwards to glibc 2.18's
// __cxa_thread_atexit_impl: the one symbol that kept the wheel above manylinux2014 (glibc 2.17).
// Defining __cxa_thread_atexit here keeps libstdc++'s member out of the link; the destructors run
// when the thread exits, newest first, from a pthread key's destructor (glibc 2.2.5). As with any
// pthread key, none runs for the main thread at process exit: the OS takes its memory back.
struct FlThreadDtor {
  void (*fn)(void*);
  void* obj;
  FlThreadDtor* next;
};
static pthread_key_t fl_dtor_key;
static pthread_once_t fl_dtor_once = PTHREAD_ONCE_INIT;

static void fl_run_thread_dtors(void* head) {
  for (FlThreadDtor* d = static_cast<FlThreadDtor*>(head); d != nullptr;) {
    FlThreadDtor* next = d->next;
    d->fn(d->obj);
    free(d);
    d = next;
  }
}

static void fl_make_dtor_key(void) { pthread_key_create(&fl_dtor_key, fl_run_thread_dtors); }

int __cxa_thread_atexit(void (*fn)(void*), void* obj, void* /*dso_handle*/) {
  pthread_once(&fl_dtor_once, fl_make_dtor_key);
  FlThreadDtor* d = static_cast<FlThreadDtor*>(malloc(sizeof(FlThreadDtor)));
  if (d == nullptr) return -1;
  d->fn = fn;
  d->obj = obj;
  d->next = static_cast<FlThreadDtor*>(pthread_getspecific(fl_dtor_key));
  pthread_setspecific(fl_dtor_key, d);  // a destructor that registers another makes pthread run it too
  return 0;
}

}  // extern "C"
