// Ctrl-C during a long kernel call. CPython only notes a SIGINT in its C handler and raises
// KeyboardInterrupt when the main thread next runs Python code, i.e. after the kernel (8-15 s
// measured on a long call). For the call's duration this installs a C handler that sets an atomic
// flag; the kernels watch it between chunks (parallel_chunks) and stop. The original handler is
// restored, the signal handed back to Python (PyErr_SetInterruptEx) and KeyboardInterrupt raised.
// Watched only where that is what Python would do: the main thread (where Python handles
// signals), Python's handler the default one (signal.default_int_handler, which raises), and a
// call large enough to be worth two sigaction calls (small ones end within microseconds anyway).
#pragma once

#include <pybind11/pybind11.h>

#include <atomic>
#include <csignal>

#include "../cpu/workspace.h"

#if !defined(_WIN32)
#include <pythread.h>
#endif

class SigintWatch {
 public:
  static constexpr pybind11::ssize_t kMinElements = pybind11::ssize_t(1) << 18;

  // Once, at import (with the GIL): what "main thread" and "default handler" are.
  static void init() {
#if !defined(_WIN32)
    namespace py = pybind11;
    py::module_ threading = py::module_::import("threading"), signal = py::module_::import("signal");
    main_ident() = threading.attr("main_thread")().attr("ident").cast<unsigned long>();
    getsignal() = py::object(signal.attr("getsignal")).release().ptr();  // kept for the process
    default_handler() = py::object(signal.attr("default_int_handler")).release().ptr();
#endif
  }

  // With the GIL held: starts watching if the call qualifies.
  explicit SigintWatch(pybind11::ssize_t elements) {
#if !defined(_WIN32)
    namespace py = pybind11;
    if (elements < kMinElements || !getsignal() || PyThread_get_thread_ident() != main_ident()) return;
    py::object current = py::reinterpret_borrow<py::object>(getsignal())(int(SIGINT));
    if (!current.is(py::handle(default_handler()))) return;
    struct sigaction sa {};
    sa.sa_handler = &SigintWatch::on_sigint;
    sigemptyset(&sa.sa_mask);
    flag().store(0);
    if (sigaction(SIGINT, &sa, &previous_) != 0) return;
    active_ = true;
    fastloss::set_call_interrupt(&flag());
#else
    (void)elements;
#endif
  }

  // With the GIL held, after the kernel: restores the handler; raises KeyboardInterrupt (through
  // Python's own handler) if a SIGINT came, since the kernel then left its outputs unfinished.
  void raise_if_interrupted() {
    if (!stop()) return;
#if !defined(_WIN32)
#if PY_VERSION_HEX >= 0x030A0000
    PyErr_SetInterruptEx(SIGINT);
#else
    PyErr_SetInterrupt();
#endif
    if (PyErr_CheckSignals() != 0) throw pybind11::error_already_set();
    PyErr_SetNone(PyExc_KeyboardInterrupt);  // the handler did not raise: never return partial results
    throw pybind11::error_already_set();
#endif
  }

  ~SigintWatch() { stop(); }
  SigintWatch(const SigintWatch&) = delete;
  SigintWatch& operator=(const SigintWatch&) = delete;

 private:
  // Restores the previous handler; true if a SIGINT arrived while watching.
  bool stop() {
    if (!active_) return false;
    active_ = false;
#if !defined(_WIN32)
    fastloss::set_call_interrupt(nullptr);
    sigaction(SIGINT, &previous_, nullptr);
#endif
    return flag().load() != 0;
  }

  static void on_sigint(int) { flag().store(1); }  // lock-free atomic store: async-signal-safe
  static std::atomic<int>& flag() {
    static std::atomic<int> f{0};
    return f;
  }
  static unsigned long& main_ident() {
    static unsigned long id = 0;
    return id;
  }
  static PyObject*& getsignal() {
    static PyObject* f = nullptr;
    return f;
  }
  static PyObject*& default_handler() {
    static PyObject* h = nullptr;
    return h;
  }

  bool active_ = false;
#if !defined(_WIN32)
  struct sigaction previous_ {};
#endif
};
