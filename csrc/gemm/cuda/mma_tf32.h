// The tensor-core GEMM: one block computes a BM x BN tile of C = A B with the warp-wide PTX
// instruction mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (sm_80+), which multiplies a
// 16 x 8 tile of A by an 8 x 8 tile of B, both rounded to TF32, and adds the products to a 16 x 8
// float accumulator. The operands are tiled_gemm.h's functors (a strided matrix, the implicit
// convolution's gathered columns), of any element type precision.h widens to float.
//
// Block tile 128 x 128, slices of BK = 16 staged in shared memory; its 8 warps form a 2 x 4 grid
// of 64 x 32 warp tiles, each 4 x 4 mma tiles (64 float accumulators per thread). The next
// slice's global loads are issued before the current slice is multiplied and held in registers
// (StagedSlice), so their latency hides behind the tensor-core work. Each operand value is
// rounded to TF32 once, as it is fetched (every warp then reads the rounded value), and a slice's
// row is padded to BM + 8 floats so that the 32 lanes reading a fragment (rows groupID, columns
// threadID_in_group, see below) hit 32 different banks.
//
// Which lane holds which element of each fragment is the PTX ISA's "Matrix fragments for
// mma.m16n8k8" (.tf32): a lane's groupID = lane / 4, threadID_in_group = lane % 4. They are
// FASTCONV_HD functions here, so that the host tests check them (every element held once) and
// the host build of the kernels runs the same index math (tests/cuda/host_blocks.py, where
// mma_m16n8k8_tf32 is emulated from the whole warp's fragments in fp32).
#pragma once
#include "gemm/cuda/precision.h"
#include "gemm/cuda/tiled_gemm.h"

namespace fastconv::gemm::mma {

using precision::to_tf32;
using precision::widen;

constexpr int WARP = 32, MMA_M = 16, MMA_N = 8, MMA_K = 8;
constexpr int A_REGS = 4, B_REGS = 2, C_REGS = 4;

struct Element {
  int row, col;
};
struct Holder {
  int lane, reg;
};

// A (16 x 8, row major): a0 (g, t), a1 (g + 8, t), a2 (g, t + 4), a3 (g + 8, t + 4).
FASTCONV_HD constexpr Element a_element(int lane, int reg) {
  return {lane / 4 + (reg % 2) * 8, lane % 4 + (reg / 2) * 4};
}
// B (8 x 8, "col": k down the rows): b0 (t, g), b1 (t + 4, g).
FASTCONV_HD constexpr Element b_element(int lane, int reg) { return {lane % 4 + reg * 4, lane / 4}; }
// C and D (16 x 8): c0 (g, 2t), c1 (g, 2t + 1), c2 (g + 8, 2t), c3 (g + 8, 2t + 1).
FASTCONV_HD constexpr Element c_element(int lane, int reg) {
  return {lane / 4 + (reg / 2) * 8, (lane % 4) * 2 + reg % 2};
}
// The inverses: which lane and register hold A(row, col), B(row, col) (what the emulation reads).
FASTCONV_HD constexpr Holder a_holder(int row, int col) { return {(row % 8) * 4 + col % 4, row / 8 + (col / 4) * 2}; }
FASTCONV_HD constexpr Holder b_holder(int row, int col) { return {col * 4 + row % 4, row / 4}; }

#if defined(__CUDACC__)
// d += a b on the tensor cores; every lane of the warp calls it together (.sync.aligned).
__device__ inline void mma_m16n8k8_tf32(float (&d)[C_REGS], const uint32_t (&a)[A_REGS], const uint32_t (&b)[B_REGS]) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
  __trap();  // no tensor-core TF32 before sm_80: fastconv/cuda/gemm.py refuses such a device first
#endif
}
#else
// The host build of the tests (tests/cuda/host_blocks.py runs a block's threads as host
// threads): the lanes publish their fragments per warp, meet at the block barrier (every thread
// of the block calls this the same number of times: the tile loops are uniform), and each lane
// computes its own outputs from the whole warp's operands: the exact products of the TF32
// values, added in order in float to the accumulator. (The hardware's internal adder order and
// precision are unspecified; the tests' bound covers either.)
constexpr int HOST_MAX_WARPS = 32;
inline float lane_value(uint32_t bits) { return precision::bits_float(bits); }
inline void mma_m16n8k8_tf32(float (&d)[C_REGS], const uint32_t (&a)[A_REGS], const uint32_t (&b)[B_REGS]) {
  __shared__ uint32_t a_all[HOST_MAX_WARPS][WARP][A_REGS], b_all[HOST_MAX_WARPS][WARP][B_REGS];
  const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
  for (int r = 0; r < A_REGS; ++r) a_all[warp][lane][r] = a[r];
  for (int r = 0; r < B_REGS; ++r) b_all[warp][lane][r] = b[r];
  __syncthreads();
  for (int r = 0; r < C_REGS; ++r) {
    const Element c = c_element(lane, r);
    float sum = d[r];
    for (int k = 0; k < MMA_K; ++k) {
      const Holder ha = a_holder(c.row, k), hb = b_holder(k, c.col);
      sum += lane_value(a_all[warp][ha.lane][ha.reg]) * lane_value(b_all[warp][hb.lane][hb.reg]);
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
  static_assert(BM % (WARPS_M * MMA_M) == 0 && BN % (WARPS_N * MMA_N) == 0 && BK % MMA_K == 0, "tile shape");
};

// One thread's share of a BK x WIDTH slice of an operand, held in registers between its global
// loads and its store to shared memory, so that the loads of the next slice are in flight while
// the warps multiply the current one (register double buffering). Each value is widened to float
// and rounded to TF32 as it is fetched (exact for half and bfloat16, whose mantissas fit).
template <int BK, int WIDTH, int THREADS>
struct StagedSlice {
  static constexpr int PER_THREAD = BK * WIDTH / THREADS;
  static_assert(BK * WIDTH % THREADS == 0, "every thread fetches the same number of values");
  float values[PER_THREAD];

  template <class Read>
  __device__ void fetch(const Read& read, bool x_adjacent, index_t k0, index_t ks, index_t x0, index_t xs) {
    FASTCONV_UNROLL for (int i = 0; i < PER_THREAD; ++i) {
      const auto [kk, xx] = slice_position<BK, WIDTH>(int(threadIdx.x) + i * THREADS, x_adjacent);
      const index_t k = k0 + kk, x = x0 + xx;
      values[i] = (k < ks && x < xs) ? precision::bits_float(to_tf32(widen(read(k, x)))) : 0.0f;
    }
  }

  template <int STRIDE>
  __device__ void store(float (&tile)[BK][STRIDE], bool x_adjacent) const {
    FASTCONV_UNROLL for (int i = 0; i < PER_THREAD; ++i) {
      const auto [kk, xx] = slice_position<BK, WIDTH>(int(threadIdx.x) + i * THREADS, x_adjacent);
      tile[kk][xx] = values[i];
    }
  }
};

// The warp's mma tiles over one BK-deep slice in shared memory: fragments read by the PTX
// layout's index maps, MT x NT tensor-core products per 8-deep step.
template <class Tile, int STRIDE_A, int STRIDE_B>
__device__ inline void multiply_slice(const float (&a_tile)[Tile::BK][STRIDE_A],
                                      const float (&b_tile)[Tile::BK][STRIDE_B], int warp_m, int warp_n, int lane,
                                      float (&acc)[Tile::MT][Tile::NT][C_REGS]) {
  FASTCONV_UNROLL for (int kk = 0; kk < Tile::BK; kk += MMA_K) {
    uint32_t a_frag[Tile::MT][A_REGS], b_frag[Tile::NT][B_REGS];
    FASTCONV_UNROLL for (int i = 0; i < Tile::MT; ++i)
      FASTCONV_UNROLL for (int r = 0; r < A_REGS; ++r) {
        const Element e = a_element(lane, r);
        a_frag[i][r] = precision::float_bits(a_tile[kk + e.col][warp_m + i * MMA_M + e.row]);
      }
    FASTCONV_UNROLL for (int j = 0; j < Tile::NT; ++j)
      FASTCONV_UNROLL for (int r = 0; r < B_REGS; ++r) {
        const Element e = b_element(lane, r);
        b_frag[j][r] = precision::float_bits(b_tile[kk + e.row][warp_n + j * MMA_N + e.col]);
      }
    FASTCONV_UNROLL for (int i = 0; i < Tile::MT; ++i)
      FASTCONV_UNROLL for (int j = 0; j < Tile::NT; ++j) mma_m16n8k8_tf32(acc[i][j], a_frag[i], b_frag[j]);
  }
}

// The block's tile of C at (m0, n0), as tiled_gemm.h's gemm_tile: every thread of the block
// calls it; store(m, n, sum) once per in-range element, `sum` a float.
template <class Tile, class A, class B, class Store>
__device__ inline void mma_gemm_tile(index_t M, index_t N, index_t K, index_t m0, index_t n0, const A& a,
                                     const B& b, const Store& store) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, MT = Tile::MT, NT = Tile::NT;
  __shared__ float a_tile[BK][BM + Tile::PAD];
  __shared__ float b_tile[BK][BN + Tile::PAD];
  const int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
  const int warp_m = warp / Tile::WARPS_N * Tile::WM, warp_n = warp % Tile::WARPS_N * Tile::WN;
  float acc[MT][NT][C_REGS];
  FASTCONV_UNROLL for (int i = 0; i < MT; ++i)
    FASTCONV_UNROLL for (int j = 0; j < NT; ++j)
      FASTCONV_UNROLL for (int r = 0; r < C_REGS; ++r) acc[i][j][r] = 0.0f;
  const Transposed<A> a_by_k{a};
  const bool a_m_adjacent = !a.columns_adjacent(), b_n_adjacent = b.columns_adjacent();
  StagedSlice<BK, BM, Tile::THREADS> a_next;
  StagedSlice<BK, BN, Tile::THREADS> b_next;
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
    multiply_slice<Tile>(a_tile, b_tile, warp_m, warp_n, lane, acc);
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
