#include "core/isa.h"

#include <algorithm>
#include <fstream>
#include <string>

#include "core/errors.h"

#include <unistd.h>

namespace fastconv {

namespace {

bool cpu_has(Isa isa) {
#if FASTCONV_X86 && defined(__GNUC__)
  // libgcc's feature bits include the OS check (XGETBV) that the wide registers are saved.
  switch (isa) {
    case Isa::generic: return true;
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  return isa == Isa::generic;
#endif
}

Isa g_active = supported_isas().back();

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::generic: return "generic";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (cpu_has(isa)) out.push_back(isa);
  return out;
}

std::vector<std::string> supported_isa_names() {
  std::vector<std::string> names;
  for (Isa isa : supported_isas()) names.emplace_back(isa_name(isa));
  return names;
}

Isa active_isa() { return g_active; }

void set_active_isa(const std::string& name) {
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (name != isa_name(isa)) continue;
    if (!cpu_has(isa)) fail<ValueError>("isa: '", name, "' is not supported by this CPU");
    g_active = isa;
    return;
  }
  fail<ValueError>("isa: expected one of 'generic', 'avx2', 'avx512', got '", name, "'");
}

long l2_cache_bytes() {
#ifdef _SC_LEVEL2_CACHE_SIZE
  static const long bytes = std::max(sysconf(_SC_LEVEL2_CACHE_SIZE), 0L);
  return bytes;
#else
  return 0;
#endif
}

// sysfs names one cache instance (the L3 a core shares, 32 MiB on this EPYC); glibc's sysconf
// reported the whole socket's (256 MiB).
long last_level_cache_bytes() {
  static const long bytes = [] {
    for (const char* path : {"/sys/devices/system/cpu/cpu0/cache/index3/size",
                             "/sys/devices/system/cpu/cpu0/cache/index2/size"}) {
      std::ifstream file(path);
      long size = 0;
      std::string unit;
      if (file >> size && size > 0) {
        file >> unit;
        return unit == "M" ? size << 20 : unit == "K" ? size << 10 : size;
      }
    }
    return l2_cache_bytes();
  }();
  return bytes;
}

}  // namespace fastconv
