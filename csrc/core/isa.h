// Instruction-set dispatch. The binary is built for baseline x86-64; micro-kernels compiled for
// AVX2 and AVX-512 are chosen at run time. Builds for other processors (aarch64) have the generic
// level only (core/arch.h). FASTCONV_ISA (read by fastconv/__init__.py) or
// fastconv.set_isa() can force a lower level, which is how the tests cover every variant.
#pragma once
#include "core/arch.h"

#include <string>
#include <vector>

namespace fastconv {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

const char* isa_name(Isa isa);
std::vector<Isa> supported_isas();  // lowest first; always contains generic
std::vector<std::string> supported_isa_names();  // as isa_name says them
Isa active_isa();
void set_active_isa(const std::string& name);  // ValueError if unknown or unsupported here

// The ISA of the hand-vectorised kernels (the *_avx2.cpp / *_avx512.cpp files): active_isa() on
// x86, generic elsewhere, where those files compile to nothing.
inline Isa vector_isa() {
#if FASTCONV_X86
  return active_isa();
#else
  return Isa::generic;
#endif
}

// A family's loop table as built for each ISA (the per-ISA loop tables of ARCHITECTURE.md),
// made once; active() is vector_isa()'s. Only x86 builds the AVX2 and AVX-512 tables.
template <class Table>
class IsaTables {
 public:
#if FASTCONV_X86
  IsaTables(const Table& baseline, const Table& avx2, const Table& avx512)
      : baseline_(baseline), avx2_(avx2), avx512_(avx512) {}
#else
  explicit IsaTables(const Table& baseline) : baseline_(baseline) {}
#endif
  const Table& active() const {
#if FASTCONV_X86
    switch (vector_isa()) {
      case Isa::avx512: return avx512_;
      case Isa::avx2: return avx2_;
      case Isa::generic: break;
    }
#endif
    return baseline_;
  }

 private:
  Table baseline_;
#if FASTCONV_X86
  Table avx2_, avx512_;
#endif
};

// One core's L2 data cache in bytes as the OS reports it, or 0 when it does not say.
long l2_cache_bytes();
// The last-level cache in bytes as the OS reports it (the L3, else the L2), or 0.
long last_level_cache_bytes();

}  // namespace fastconv
