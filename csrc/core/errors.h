// Errors raised by kernels before they touch memory.
// bind/module.cpp registers them: they reach Python as its ValueError, TypeError and MemoryError.
#pragma once
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace fastconv {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A failed allocation whose size is known: Python's MemoryError with that size in the message
// (a plain std::bad_alloc becomes a MemoryError too, without it).
struct OutOfMemory : std::bad_alloc {
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// Builds a message from any streamable pieces: fail<ValueError>("x: expected ", 4, "-d").
template <class Error, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

template <class... Parts>
void check(bool ok, const Parts&... parts) {
  if (!ok) fail<ValueError>(parts...);
}

}  // namespace fastconv
