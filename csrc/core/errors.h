// Errors raised by kernels before they touch memory.
// bind/module.cpp registers them: they reach Python as its ValueError and TypeError.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace fastconv {

struct ValueError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct TypeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
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
