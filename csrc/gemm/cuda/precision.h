// The element types of the GEMM kernels besides float and double: IEEE binary16 (numpy's
// float16) and bfloat16 (ml_dtypes' bfloat16) held as their 16 bits, widened to float to be
// multiplied and accumulated, and narrowed back (round to nearest even) when C is written; and
// the rounding of a float to TensorFloat-32 that the tensor cores multiply (10 mantissa bits,
// float's exponent).
//
// Every conversion is written out in integer arithmetic, so the host tests run exactly what a
// GPU without the PTX conversions would; on a GPU, half <-> float use the PTX cvt instructions
// (the same IEEE conversions) and TF32 rounding uses cvt.rna.tf32.f32, whose rounding (nearest,
// ties away from zero) the integer version reproduces.
#pragma once
#include "common/c_headers.h"
#include "common/host_device.h"

namespace fastconv::precision {

struct half {
  unsigned short bits;
};
struct bfloat16 {
  unsigned short bits;
};

// What a product of two T is accumulated in: float for the 16-bit types (as cuBLAS's and
// PyTorch's half GEMMs accumulate), T itself otherwise.
template <class T>
struct Accumulator {
  using type = T;
};
template <>
struct Accumulator<half> {
  using type = float;
};
template <>
struct Accumulator<bfloat16> {
  using type = float;
};
template <class T>
using accumulator_t = typename Accumulator<T>::type;

FASTCONV_HD inline uint32_t float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(v);
#else
  uint32_t bits;
  __builtin_memcpy(&bits, &v, sizeof bits);
  return bits;
#endif
}

FASTCONV_HD inline float bits_float(uint32_t bits) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float v;
  __builtin_memcpy(&v, &bits, sizeof v);
  return v;
#endif
}

constexpr uint32_t FLOAT_EXPONENT = 0x7f800000u;

// TF32 keeps float's top 19 bits (sign, 8 exponent bits, 10 mantissa bits). Rounding to nearest
// with ties away from zero is adding half a TF32 unit (bit 12) to the magnitude and cutting the
// 13 low bits: a carry rounds up into the exponent, and past the largest TF32 into infinity.
// Infinities and NaNs are left alone (a NaN whose payload lies in the cut bits stays a NaN).
FASTCONV_HD inline uint32_t tf32_round_bits(float v) {
  const uint32_t bits = float_bits(v);
  if ((bits & FLOAT_EXPONENT) == FLOAT_EXPONENT) return bits;
  return (bits + 0x1000u) & 0xffffe000u;
}

// A float rounded to TF32 as the tensor cores read it: its 32-bit register. (cvt.rna.tf32 needs
// sm_80; older GPUs compile the integer version, so that the module still builds there.)
FASTCONV_HD inline uint32_t to_tf32(float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t rounded;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(rounded) : "f"(v));
  return rounded;
#else
  return tf32_round_bits(v);
#endif
}

// binary16 -> float, exactly (every half is a float): rebias the exponent, shift the mantissa;
// subnormal halves are mantissa * 2^-24.
FASTCONV_HD inline float half_bits_to_float(unsigned short h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = float(mantissa) * (1.0f / 16777216.0f);  // exact: mantissa < 2^10
    return bits_float(sign | float_bits(magnitude));
  }
  if (exponent == 0x1f) return bits_float(sign | FLOAT_EXPONENT | (mantissa << 13));
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// `value` shifted right by `shift` (>= 1) bits, rounded to nearest even.
FASTCONV_HD inline uint32_t shift_round_even(uint32_t value, int shift) {
  const uint32_t kept = value >> shift, rest = value & ((1u << shift) - 1u), half_way = 1u << (shift - 1);
  return kept + ((rest > half_way || (rest == half_way && (kept & 1u))) ? 1u : 0u);
}

// float -> binary16, round to nearest even: NaN -> quiet NaN, >= 65520 -> infinity, normal
// halves by rounding away float's 13 extra mantissa bits, subnormals (below 2^-14) as the
// nearest multiple of 2^-24.
FASTCONV_HD inline unsigned short float_to_half_bits(float v) {
  const uint32_t bits = float_bits(v), sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7fffffffu;
  if (magnitude > FLOAT_EXPONENT) return static_cast<unsigned short>(sign | 0x7e00u);
  if (magnitude >= 0x477ff000u) return static_cast<unsigned short>(sign | 0x7c00u);  // 65520
  if (magnitude >= 0x38800000u)                                                      // 2^-14
    return static_cast<unsigned short>(sign | (shift_round_even(magnitude, 13) - (112u << 10)));
  if (magnitude < 0x33000000u) return static_cast<unsigned short>(sign);  // below 2^-25: zero
  const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7fffffu) | 0x800000u;
  return static_cast<unsigned short>(sign | shift_round_even(mantissa, 126 - int(exponent)));
}

// bfloat16 is float's top half: widening appends 16 zero bits; narrowing rounds them away to
// nearest even (a carry reaches the exponent, or infinity), NaNs kept quiet.
FASTCONV_HD inline float bfloat16_bits_to_float(unsigned short b) { return bits_float(uint32_t(b) << 16); }

FASTCONV_HD inline unsigned short float_to_bfloat16_bits(float v) {
  const uint32_t bits = float_bits(v);
  if ((bits & 0x7fffffffu) > FLOAT_EXPONENT) return static_cast<unsigned short>((bits >> 16) | 0x40u);
  return static_cast<unsigned short>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

FASTCONV_HD inline float widen(float v) { return v; }
FASTCONV_HD inline double widen(double v) { return v; }
FASTCONV_HD inline float widen(bfloat16 v) { return bfloat16_bits_to_float(v.bits); }
FASTCONV_HD inline float widen(half v) {
#if defined(__CUDA_ARCH__)
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
  return f;
#else
  return half_bits_to_float(v.bits);
#endif
}

template <class T>
struct Narrow {
  FASTCONV_HD static T from(accumulator_t<T> v) { return v; }
};
template <>
struct Narrow<bfloat16> {
  FASTCONV_HD static bfloat16 from(float v) { return {float_to_bfloat16_bits(v)}; }
};
template <>
struct Narrow<half> {
  FASTCONV_HD static half from(float v) {
#if defined(__CUDA_ARCH__)
    unsigned short bits;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(bits) : "f"(v));
    return {bits};
#else
    return {float_to_half_bits(v)};
#endif
  }
};

// The accumulated value `v` stored as a T (rounded to nearest even for the 16-bit types).
template <class T>
FASTCONV_HD inline T narrow(accumulator_t<T> v) {
  return Narrow<T>::from(v);
}

}  // namespace fastconv::precision
