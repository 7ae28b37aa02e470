// The tensor-core GEMM: one block computes a BM x BN tile of C = A B with the warp-wide PTX
// mma.sync instructions (sm_80+), float accumulators throughout:
//   float32 (TF32 allowed)  mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32: operands rounded
//                           to TF32 (cvt.rna.tf32.f32), products exact, float sums;
//   float16 / bfloat16      mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32: the
//                           16-bit values as they are, two per 32-bit register, products exact.
// The operands are tiled_gemm.h's functors (a strided matrix, the implicit convolution's
// gathered columns).
//
// Block tile 128 x 128, slices of BK = 16 staged in shared memory (as floats rounded to TF32, or
// as the 16-bit values); the 8 warps form a 2 x 4 grid of 64 x 32 warp tiles, each 4 x 4 mma tiles
// of 16 x 8 (64 float accumulators per thread). The next slice's global loads are issued before
// the current slice is multiplied and held in registers (StagedSlice), so their latency hides
// behind the tensor-core work. A slice's row is padded by 8 values so that the 32 lanes reading a
// fragment (rows groupID, columns from threadID_in_group, see below) hit different banks.
//
// Which lane holds which element of each fragment is the PTX ISA's "Matrix fragments for
// mma.m16n8k8" (.tf32) and "... mma.m16n8k16 with floating point type" (.f16/.bf16): a lane's
// groupID g = lane / 4, threadID_in_group t = lane % 4. They are FASTCONV_HD functions here, so
// that the host tests check them (every element held once) and the host build of the kernels
// runs the same index math (tests/cuda/host_blocks.py, where the mma is emulated from the whole
// warp's fragments in float).
#pragma once
#include "gemm/cuda/precision.h"
#include "gemm/cuda/tiled_gemm.h"

namespace fastconv::gemm::mma {

using precision::widen;

constexpr int WARP = 32, MMA_M = 16, MMA_N = 8;
constexpr int A_REGS = 4, B_REGS = 2, C_REGS = 4;

struct Element {
  int row, col;
};
// The lane, register and half of the register (0: low 16 bits) that hold an element.
struct Holder {
  int lane, reg, half;
};

// C and D (16 x 8) of both shapes: c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1).
FASTCONV_HD constexpr Element c_element(int lane, int reg) {
  return {lane / 4 + (reg / 2) * 8, (lane % 4) * 2 + reg % 2};
}

// m16n8k8 with TF32 operands, one per register. A (16 x 8): a0 (g, t), a1 (g + 8, t),
// a2 (g, t + 4), a3 (g + 8, t + 4); B (8 x 8, k down the rows): b0 (t, g), b1 (t + 4, g).
struct Tf32 {
  using Stage = float;  // a staged value: the float rounded to TF32
  static constexpr int K = 8, PER_REG = 1;
  FASTCONV_HD static constexpr Element a_element(int lane, int reg) {
    return {lane / 4 + (reg % 2) * 8, lane % 4 + (reg / 2) * 4};
  }
  FASTCONV_HD static constexpr Element b_element(int lane, int reg) { return {lane % 4 + reg * 4, lane / 4}; }
  FASTCONV_HD static constexpr Holder a_holder(int row, int col) {
    return {(row % 8) * 4 + col % 4, row / 8 + (col / 4) * 2, 0};
  }
  FASTCONV_HD static constexpr Holder b_holder(int row, int col) { return {col * 4 + row % 4, row / 4, 0}; }
  template <class T>
  __device__ static float stage(T v) {
    return precision::bits_float(precision::to_tf32(widen(v)));
  }
  // A register of a fragment: the staged value at the element's place.
  __device__ static uint32_t reg(const float* first, int /*next_k*/) { return precision::float_bits(*first); }
  FASTCONV_HD static float value(uint32_t reg, int /*half*/) { return precision::bits_float(reg); }
};

// m16n8k16 with 16-bit operands, two per register (the lower k in the low half). A (16 x 16):
// register r holds (g + (r % 2) * 8, 2t + (r / 2) * 8 + {0, 1}); B (16 x 8): register r holds
// (2t + r * 8 + {0, 1}, g).
template <class T>
struct Bits16 {
  using Stage = T;  // a staged value: the 16-bit value itself
  static constexpr int K = 16, PER_REG = 2;
  FASTCONV_HD static constexpr Element a_element(int lane, int reg) {
    return {lane / 4 + (reg % 2) * 8, (lane % 4) * 2 + (reg / 2) * 8};
  }
  FASTCONV_HD static constexpr Element b_element(int lane, int reg) { return {(lane % 4) * 2 + reg * 8, lane / 4}; }
  FASTCONV_HD static constexpr Holder a_holder(int row, int col) {
    return {(row % 8) * 4 + (col % 8) / 2, row / 8 + (col / 8) * 2, col % 2};
  }
  FASTCONV_HD static constexpr Holder b_holder(int row, int col) { return {col * 4 + (row % 8) / 2, row / 8, row % 2}; }
  __device__ static T stage(T v) { return v; }
  // The element and its next-k neighbour, `next_k` values further in the staged slice.
  __device__ static uint32_t reg(const T* first, int next_k) {
    return uint32_t(first->bits) | uint32_t(first[next_k].bits) << 16;
  }
  FASTCONV_HD static float value(uint32_t reg, int half) {
    return widen(T{static_cast<unsigned short>(half ? reg >> 16 : reg & 0xffffu)});
  }
};

template <class T>
struct OperandFormat {
  using type = Bits16<T>;
};
template <>
struct OperandFormat<float> {
  using type = Tf32;
};

#if defined(__CUDACC__)
// d += a b on the tensor cores; every lane of the warp calls it together (.sync.aligned).
#if __CUDA_ARCH__ >= 800
#define FASTCONV_MMA(SHAPE_TYPES)                                                                          \
  asm volatile("mma.sync.aligned." SHAPE_TYPES " {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};" \
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])                                             \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]))
#else
#define FASTCONV_MMA(SHAPE_TYPES) __trap()  // no such mma before sm_80: gemm.py refuses such a device first
#endif
__device__ inline void mma(Tf32, float (&d)[C_REGS], const uint32_t (&a)[A_REGS], const uint32_t (&b)[B_REGS]) {
  FASTCONV_MMA("m16n8k8.row.col.f32.tf32.tf32.f32");
}
__device__ inline void mma(Bits16<precision::half>, float (&d)[C_REGS], const uint32_t (&a)[A_REGS],
                           const uint32_t (&b)[B_REGS]) {
  FASTCONV_MMA("m16n8k16.row.col.f32.f16.f16.f32");
}
__device__ inline void mma(Bits16<precision::bfloat16>, float (&d)[C_REGS], const uint32_t (&a)[A_REGS],
                           const uint32_t (&b)[B_REGS]) {
  FASTCONV_MMA("m16n8k16.row.col.f32.bf16.bf16.f32");
}
#undef FASTCONV_MMA
#else
// The host build of the tests (tests/cuda/host_blocks.py runs a block's threads as host
// threads): the lanes publish their fragments per warp, meet at the block barrier (every thread
// of the block calls this the same number of times: the tile loops are uniform), and each lane
// computes its own outputs from the whole warp's operands: the exact products of the operand
// values, added in k order in float to the accumulator. (The hardware's internal adder order and
// precision are unspecified; the tests' bound covers either.)
constexpr int HOST_MAX_WARPS = 32;
template <class Format>
inline void mma(Format, float (&d)[C_REGS], const uint32_t (&a)[A_REGS], const uint32_t (&b)[B_REGS]) {
  __shared__ uint32_t a_all[HOST_MAX_WARPS][WARP][A_REGS], b_all[HOST_MAX_WARPS][WARP][B_REGS];
  const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
  for (int r = 0; r < A_REGS; ++r) a_all[warp][lane][r] = a[r];
  for (int r = 0; r < B_REGS; ++r) b_all[warp][lane][r] = b[r];
  __syncthreads();
  for (int r = 0; r < C_REGS; ++r) {
    const Element c = c_element(lane, r);
    float sum = d[r];
    for (int k = 0; k < Format::K; ++k) {
      const Holder ha = Format::a_holder(c.row, k), hb = Format::b_holder(k, c.col);
      const float a_value = Format::value(a_all[warp][ha.lane][ha.reg], ha.half);
      sum += a_value * Format::value(b_all[warp][hb.lane][hb.reg], hb.half);
    }
    d[r] = sum;
  }
  __syncthreads();  // the next call overwrites the published fragments
}
#endif

struct MmaTile {
  static constexpr int BM = 128, BN = 128, BK = 16, WARPS_M = 2, WARPS_N = 4;
  static constexpr int WM = BM / WARPS_M, WN = BN / WARPS_N;        // a warp's tile: 64 x 32
  static constexpr int MT = WM / MMA_M, NT = WN / MMA_N;            // 4 x 4 mma tiles in it
  static constexpr int THREADS = WARPS_M * WARPS_N * WARP, PAD = 8;  // PAD: see the top
  static_assert(BM % (WARPS_M * MMA_M) == 0 && BN % (WARPS_N * MMA_N) == 0 && BK % 16 == 0, "tile shape");
};

// One thread's share of a BK x WIDTH slice of an operand, held in registers between its global
// loads and its store to shared memory, so that the loads of the next slice are in flight while
// the warps multiply the current one (register double buffering). Each value is staged in the
// format's form as it is fetched (rounded to TF32 once, for float).
template <class Format, int BK, int WIDTH, int THREADS>
struct StagedSlice {
  using Stage = typename Format::Stage;
  static constexpr int PER_THREAD = BK * WIDTH / THREADS;
  static_assert(BK * WIDTH % THREADS == 0, "every thread fetches the same number of values");
  Stage values[PER_THREAD];

  template <class Read>
  __device__ void fetch(const Read& read, bool x_adjacent, index_t k0, index_t ks, index_t x0, index_t xs) {
    FASTCONV_UNROLL for (int i = 0; i < PER_THREAD; ++i) {
      const auto [kk, xx] = slice_position<BK, WIDTH>(int(threadIdx.x) + i * THREADS, x_adjacent);
      const index_t k = k0 + kk, x = x0 + xx;
      values[i] = (k < ks && x < xs) ? Format::stage(read(k, x)) : Stage{};  // +0 in every format
    }
  }

  template <int STRIDE>
  __device__ void store(Stage (&tile)[BK][STRIDE], bool x_adjacent) const {
    FASTCONV_UNROLL for (int i = 0; i < PER_THREAD; ++i) {
      const auto [kk, xx] = slice_position<BK, WIDTH>(int(threadIdx.x) + i * THREADS, x_adjacent);
      tile[kk][xx] = values[i];
    }
  }
};

// The warp's mma tiles over one BK-deep slice in shared memory (tiles k-major: a_tile[k][m],
// b_tile[k][n]): fragments read by the PTX layout's index maps, MT x NT products per K-deep step.
template <class Tile, class Format, int STRIDE_A, int STRIDE_B>
__device__ inline void multiply_slice(const typename Format::Stage (&a_tile)[Tile::BK][STRIDE_A],
                                      const typename Format::Stage (&b_tile)[Tile::BK][STRIDE_B], int warp_m,
                                      int warp_n, int lane, float (&acc)[Tile::MT][Tile::NT][C_REGS]) {
  FASTCONV_UNROLL for (int kk = 0; kk < Tile::BK; kk += Format::K) {
    uint32_t a_frag[Tile::MT][A_REGS], b_frag[Tile::NT][B_REGS];
    FASTCONV_UNROLL for (int i = 0; i < Tile::MT; ++i)
      FASTCONV_UNROLL for (int r = 0; r < A_REGS; ++r) {
        const Element e = Format::a_element(lane, r);
        a_frag[i][r] = Format::reg(&a_tile[kk + e.col][warp_m + i * MMA_M + e.row], STRIDE_A);
      }
    FASTCONV_UNROLL for (int j = 0; j < Tile::NT; ++j)
      FASTCONV_UNROLL for (int r = 0; r < B_REGS; ++r) {
        const Element e = Format::b_element(lane, r);
        b_frag[j][r] = Format::reg(&b_tile[kk + e.row][warp_n + j * MMA_N + e.col], STRIDE_B);
      }
    FASTCONV_UNROLL for (int i = 0; i < Tile::MT; ++i)
      FASTCONV_UNROLL for (int j = 0; j < Tile::NT; ++j) mma(Format{}, acc[i][j], a_frag[i], b_frag[j]);
  }
}

// The block's tile of C at (m0, n0), as tiled_gemm.h's gemm_tile, for operands of element type
// T: every thread of the block calls it; store(m, n, sum) once per in-range element, `sum` a float.
template <class T, class Tile, class A, class B, class Store>
__device__ inline void mma_gemm_tile(index_t M, index_t N, index_t K, index_t m0, index_t n0, const A& a,
                                     const B& b, const Store& store) {
  using Format = typename OperandFormat<T>::type;
  using Stage = typename Format::Stage;
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, MT = Tile::MT, NT = Tile::NT;
  __shared__ Stage a_tile[BK][BM + Tile::PAD];
  __shared__ Stage b_tile[BK][BN + Tile::PAD];
  const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
  const int warp_m = warp / Tile::WARPS_N * Tile::WM, warp_n = warp % Tile::WARPS_N * Tile::WN;
  float acc[MT][NT][C_REGS];
  FASTCONV_UNROLL for (int i = 0; i < MT; ++i)
    FASTCONV_UNROLL for (int j = 0; j < NT; ++j)
      FASTCONV_UNROLL for (int r = 0; r < C_REGS; ++r) acc[i][j][r] = 0.0f;
  const Transposed<A> a_by_k{a};
  const bool a_m_adjacent = !a.columns_adjacent(), b_n_adjacent = b.columns_adjacent();
  StagedSlice<Format, BK, BM, Tile::THREADS> a_next;
  StagedSlice<Format, BK, BN, Tile::THREADS> b_next;
  a_next.fetch(a_by_k, a_m_adjacent, 0, K, m0, M);
  b_next.fetch(b, b_n_adjacent, 0, K, n0, N);
  for (index_t k0 = 0; k0 < K; k0 += BK) {
    a_next.store(a_tile, a_m_adjacent);
    b_next.store(b_tile, b_n_adjacent);
    __syncthreads();
    if (k0 + BK < K) {  // the next slice's loads, in flight during this slice's products
      a_next.fetch(a_by_k, a_m_adjacent, k0 + BK, K, m0, M);
      b_next.fetch(b, b_n_adjacent, k0 + BK, K, n0, N);
    }
    multiply_slice<Tile, Format>(a_tile, b_tile, warp_m, warp_n, lane, acc);
    __syncthreads();  // the next slice overwrites the tiles
  }
  // A lane writes two neighbouring columns of two rows per mma tile: each group of 4 lanes
  // writes 8 consecutive values of a row (32-byte segments).
  FASTCONV_UNROLL for (int i = 0; i < MT; ++i)
    FASTCONV_UNROLL for (int j = 0; j < NT; ++j)
      FASTCONV_UNROLL for (int r = 0; r < C_REGS; ++r) {
        const Element e = c_element(lane, r);
        const index_t m = m0 + warp_m + i * MMA_M + e.row, n = n0 + warp_n + j * MMA_N + e.col;
        if (m < M && n < N) store(m, n, acc[i][j][r]);
      }
}

}  // namespace fastconv::gemm::mma
