// Portable micro-kernels for CPUs without AVX2: GCC vector extensions, which compile to SSE2
// on baseline x86-64 (and to NEON elsewhere). A 4 x 8 (float) or 4 x 4 (double) tile.
#include "gemm/microkernel.h"

namespace fastconv::gemm {
namespace {

template <class Scalar, int Width>
struct GenericVec {
  using T = Scalar;
  typedef Scalar Reg __attribute__((vector_size(sizeof(Scalar) * Width)));
  static constexpr int width = Width;
  static constexpr int registers = 16;  // vector registers of the ISA
  static Reg zero() { return Reg{} ; }
  static Reg set1(T x) { return Reg{} + x; }
  static Reg load(const T* p) { return *reinterpret_cast<const Reg*>(p); }
  static Reg loadu(const T* p) {
    Reg v;
    __builtin_memcpy(&v, p, sizeof(Reg));
    return v;
  }
  static void storeu(T* p, Reg v) { __builtin_memcpy(p, &v, sizeof(Reg)); }
  static Reg fma(Reg a, Reg b, Reg c) { return a * b + c; }
  static Reg mul(Reg a, Reg b) { return a * b; }
  static Reg add(Reg a, Reg b) { return a + b; }
  static Reg max(Reg a, Reg b) { return a > b ? a : b; }
};

}  // namespace

const KernelFamily<float>& generic_kernels_f32() {
  static const auto set = make_kernel_set<GenericVec<float, 4>, 4, 2>(256, 2048);
  static const KernelFamily<float> family{set, set};
  return family;
}
const KernelFamily<double>& generic_kernels_f64() {
  static const auto set = make_kernel_set<GenericVec<double, 2>, 4, 2>(256, 2048);
  static const KernelFamily<double> family{set, set};
  return family;
}

}  // namespace fastconv::gemm
