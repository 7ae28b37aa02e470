// The processor family this file is compiled for. The vector kernels (AVX2, AVX-512: the
// *_avx2.cpp / *_avx512.cpp files, their callers' dispatch lines, core/stream_store.h's
// non-temporal stores) exist on x86 only; elsewhere (aarch64) those files compile to nothing and
// every kernel runs its portable form, which the generic ISA runs on x86 too.
//
// No includes here: a per-ISA file includes this before its `#pragma GCC target`, so that
// nothing shared with baseline code is compiled for the wider ISA.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define FASTCONV_X86 1
#else
#define FASTCONV_X86 0
#endif
