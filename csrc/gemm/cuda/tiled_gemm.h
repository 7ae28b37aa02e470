// The tiled, register-blocked SIMT GEMM that gemm.cu's kernels run: one block computes a BM x BN
// tile of C = A B, staging BK-deep slices of A and B in shared memory; each of its threads
// accumulates a TM x TN block of the tile in registers (the classic "outer product" SGEMM:
// every value read from shared memory feeds TN or TM multiply-adds).
//
// The operands are functors, so that the same main loop runs a strided matrix product and a
// convolution whose B operand (the column matrix) is gathered from the input on the fly
// (implicit GEMM): A(m, k) and B(k, n) return one element, in range by construction; the tile
// loaders fill the tile's out-of-range part with zeros, so M, N and K need not be multiples
// of the tile. The epilogue functor writes C(m, n) from the accumulated sum.
//
// Each thread owns rows tm + i * (BM / TM) and columns tn + j * (BN / TN) of the tile (strided,
// not a contiguous TM x TN block): the threads of a warp then read consecutive shared-memory
// words (no bank conflicts) and write consecutive columns of C (coalesced).
#pragma once
#include "common/index.h"

// Fully unrolled loops keep a thread's accumulators in registers (nvcc and NVRTC; the host
// build of the tests has no such pragma).
#if defined(__CUDACC__)
#define FASTCONV_UNROLL _Pragma("unroll")
#else
#define FASTCONV_UNROLL
#endif

namespace fastconv::gemm {

template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct TileShape {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int THREAD_ROWS = BM / TM, THREAD_COLS = BN / TN;
  static constexpr int THREADS = THREAD_ROWS * THREAD_COLS;
  static_assert(BM % TM == 0 && BN % TN == 0, "a thread's block must divide the tile");
};

// 256 threads each: float32 in 128 x 128 tiles of 8 x 8 per thread (64 accumulators); float64
// in 64 x 64 tiles of 4 x 4 (16 double accumulators: the same 32 registers' worth per thread
// for C as float32's 64, leaving room for the A and B fragments).
template <class T>
struct DefaultTile;
template <>
struct DefaultTile<float> {
  using type = TileShape<128, 128, 8, 8, 8>;
};
template <>
struct DefaultTile<double> {
  using type = TileShape<64, 64, 8, 4, 4>;
};

// A matrix of any strides (a transposed view is one whose strides are swapped).
template <class T>
struct StridedMatrix {
  const T* data;
  index_t row_stride, col_stride;
  __device__ T operator()(index_t row, index_t col) const { return data[row * row_stride + col * col_stride]; }
  // Whether neighbouring columns are nearer in memory than neighbouring rows: the tile loader
  // then lets neighbouring threads read neighbouring columns (coalesced loads).
  __device__ bool columns_adjacent() const { return col_stride <= row_stride; }
};

// Where element e of a BK x WIDTH slice goes: x_adjacent (neighbouring x are neighbouring in
// memory), consecutive e take consecutive x; otherwise consecutive k.
struct SlicePosition {
  int kk, xx;
};
template <int BK, int WIDTH>
__device__ inline SlicePosition slice_position(int e, bool x_adjacent) {
  return {x_adjacent ? e / WIDTH : e % BK, x_adjacent ? e % WIDTH : e / BK};
}

// Fills tile[BK][WIDTH] with the slice (k0.., x0..) of an operand seen as op(k, x) (A read
// transposed, B as it is), zeros past `ks` and `xs`, neighbouring threads reading neighbouring
// addresses (coalesced).
template <int BK, int WIDTH, int THREADS, class T, class Read>
__device__ inline void load_tile(T (&tile)[BK][WIDTH], const Read& read, bool x_adjacent, index_t k0, index_t ks,
                                 index_t x0, index_t xs) {
  for (int e = threadIdx.x; e < BK * WIDTH; e += THREADS) {
    const auto [kk, xx] = slice_position<BK, WIDTH>(e, x_adjacent);
    const index_t k = k0 + kk, x = x0 + xx;
    tile[kk][xx] = (k < ks && x < xs) ? read(k, x) : T(0);
  }
}

// A read as (k, m): the A tile is stored k-major, so that the inner loop reads a row of it.
template <class A>
struct Transposed {
  const A& a;
  __device__ auto operator()(index_t k, index_t m) const { return a(m, k); }
};

// C's tile at (m0, n0) of an M x N x K product: every thread of the block calls it (it
// synchronises the block); `store(m, n, sum)` is called once per in-range element.
template <class T, class Tile, class A, class B, class Store>
__device__ inline void gemm_tile(index_t M, index_t N, index_t K, index_t m0, index_t n0, const A& a, const B& b,
                                 const Store& store) {
  constexpr int BM = Tile::BM, BN = Tile::BN, BK = Tile::BK, TM = Tile::TM, TN = Tile::TN;
  __shared__ T a_tile[BK][BM];
  __shared__ T b_tile[BK][BN];
  const int tm = threadIdx.x / Tile::THREAD_COLS, tn = threadIdx.x % Tile::THREAD_COLS;
  T sum[TM][TN];
  FASTCONV_UNROLL for (int i = 0; i < TM; ++i)
    FASTCONV_UNROLL for (int j = 0; j < TN; ++j) sum[i][j] = T(0);
  const Transposed<A> a_by_k{a};
  const bool a_m_adjacent = !a.columns_adjacent();
  for (index_t k0 = 0; k0 < K; k0 += BK) {
    load_tile<BK, BM, Tile::THREADS>(a_tile, a_by_k, a_m_adjacent, k0, K, m0, M);
    load_tile<BK, BN, Tile::THREADS>(b_tile, b, b.columns_adjacent(), k0, K, n0, N);
    __syncthreads();
    FASTCONV_UNROLL for (int kk = 0; kk < BK; ++kk) {
      T a_frag[TM], b_frag[TN];
      FASTCONV_UNROLL for (int i = 0; i < TM; ++i) a_frag[i] = a_tile[kk][tm + i * Tile::THREAD_ROWS];
      FASTCONV_UNROLL for (int j = 0; j < TN; ++j) b_frag[j] = b_tile[kk][tn + j * Tile::THREAD_COLS];
      FASTCONV_UNROLL for (int i = 0; i < TM; ++i)
        FASTCONV_UNROLL for (int j = 0; j < TN; ++j) sum[i][j] += a_frag[i] * b_frag[j];
    }
    __syncthreads();  // the next slice overwrites the tiles
  }
  FASTCONV_UNROLL for (int i = 0; i < TM; ++i) {
    const index_t m = m0 + tm + i * Tile::THREAD_ROWS;
    FASTCONV_UNROLL for (int j = 0; j < TN; ++j) {
      const index_t n = n0 + tn + j * Tile::THREAD_COLS;
      if (m < M && n < N) store(m, n, sum[i][j]);
    }
  }
}

// The tile of block item `item` among (batches) x ceil(M / BM) x ceil(N / BN): column tiles
// vary fastest, so consecutive blocks share A's rows in the L2 cache.
struct TileIndex {
  index_t batch, m0, n0;
};

template <class Tile>
__device__ inline TileIndex tile_index(index_t item, index_t M, index_t N) {
  const index_t m_tiles = (M + Tile::BM - 1) / Tile::BM, n_tiles = (N + Tile::BN - 1) / Tile::BN;
  return {item / (m_tiles * n_tiles), item / n_tiles % m_tiles * Tile::BM, item % n_tiles * Tile::BN};
}

template <class Tile>
__device__ inline index_t tile_count(index_t batches, index_t M, index_t N) {
  return batches * ((M + Tile::BM - 1) / Tile::BM) * ((N + Tile::BN - 1) / Tile::BN);
}

}  // namespace fastconv::gemm
