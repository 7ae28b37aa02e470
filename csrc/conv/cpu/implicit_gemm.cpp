// conv2d as an implicit GEMM: y[K, pixels] = w[K, C*R*S] times a virtual column matrix whose
// tiles the micro-kernel reads straight out of a copy of the input; no column matrix is ever
// made, and no B panel is packed. Extra memory per thread: one band's stride phases (about the
// band's input rows) and, unless the output rows are whole tiles, two output blocks
// (kBandOutputBytes each): one being computed, the other being copied into y meanwhile.
//
// Every row of a tile is contiguous, whatever the stride and dilation. A band of output
// rows at a time, the input is copied into zero-padded planes split by stride phase: phase
// (a, b) holds padded pixel (i*sh + a, j*sw + b) at (i, j). Output pixel (p, q) reads through
// tap (r, s) padded pixel (p*sh + r*dh, q*sw + s*dw), which is pixel (p + r', q + s') of phase
// (r*dh % sh, s*dw % sw), with r' = r*dh / sh and s' = s*dw / sw: the strided gather has
// become a shift. The GEMM runs over "wide" pixels p*Wp + q, where Wp = Q + the largest s',
// so that a tile's pixels lie at consecutive addresses of one phase plane even across output
// rows. The columns q >= Q of each wide row are computed and dropped when the band is copied
// into y (3.5% of the work of AlexNet's 11x11/4). A GEMM output column depends only on its own
// B column, so what those columns read never reaches y. When Q is a whole number of tiles (the
// 7x7/2 stem's 112 = 7 x 16), the tiles run along each output row instead, reading only its Q
// columns, and the micro-kernel writes them straight into y: nothing is dropped or copied.
//
// The micro-kernel loads tap t's row of a tile from phases + taps[t] (the gathered kernel,
// gemm/microkernel.h). Packing those rows into a panel first had cost the stem 8%.
//
// Bias and ReLU are applied by the micro-kernel while the output tile is in registers; a block
// copied into y is streamed past the cache when y is too large for it (core/stream_store.h).
#include <atomic>
#include <stdexcept>
#include <vector>

#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "core/checked_math.h"
#include "core/errors.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "core/stream_store.h"
#include "gemm/gemm.h"

namespace fastconv::conv::cpu {

namespace {

// A band's output block, wide rows of every output channel of a group: small enough to be
// read back from L2 when it is copied into y.
constexpr std::size_t kBandOutputBytes = 1u << 17;

// The layout of one band's phase planes: [C][sh][sw][band_rows + row_shift + 1][Wp]. The
// extra row holds what the last wide row's dropped columns read past the band.
struct PhaseLayout {
  index_t sh, sw;       // strides: sh * sw phases per channel
  index_t row_shift;    // the largest r': rows a band reads below its last output row
  index_t Wp;           // a wide row: Q + the largest s'
  index_t band_rows;    // output rows per band; the last band of an image may have fewer
  index_t plane() const { return (band_rows + row_shift + 1) * Wp; }

  PhaseLayout(const Conv2dShape& s, index_t value_bytes)
      : sh(s.p.stride[0]),
        sw(s.p.stride[1]),
        row_shift((s.R - 1) * s.p.dilation[0] / sh),
        Wp(s.Q + (s.S - 1) * s.p.dilation[1] / sw) {
    index_t rows = static_cast<index_t>(kBandOutputBytes) / (s.K_per_group() * Wp * value_bytes);
    // At least four bands per thread over the batch, so that the threads finish together.
    rows = std::min(rows, s.N * s.P / (4 * num_threads()));
    rows = std::clamp<index_t>(rows, 1, s.P);
    band_rows = ceil_div(s.P, ceil_div(s.P, rows));  // equal bands
  }
};

// The phase planes of output rows [p0, p0 + rows) of one image.
template <class T>
void copy_band_phases(const Conv2dShape& s, const PhaseLayout& L, const T* image, index_t p0, index_t rows,
                      T* phases) {
  const index_t pt = s.p.pad_begin[0], pl = s.p.pad_begin[1];
  for (index_t c = 0; c < s.C; ++c)
    for (index_t a = 0; a < L.sh; ++a)
      for (index_t b = 0; b < L.sw; ++b)
        copy_padded_rows(image + c * s.H * s.W, s.H, s.W, p0 * L.sh + a - pt, b - pl, rows + L.row_shift + 1, L.Wp,
                         phases + ((c * L.sh + a) * L.sw + b) * L.plane(), L.sh, L.sw);
}

// Where row (c, r, s) of group g's virtual column matrix starts in a band's phases.
std::vector<index_t> tap_offsets(const Conv2dShape& s, const PhaseLayout& L, index_t g) {
  const index_t Cg = s.C_per_group();
  std::vector<index_t> taps;
  taps.reserve(Cg * s.R * s.S);
  for (index_t c = g * Cg; c < (g + 1) * Cg; ++c)
    for (index_t r = 0; r < s.R; ++r)
      for (index_t k = 0; k < s.S; ++k) {
        const index_t dy = r * s.p.dilation[0], dx = k * s.p.dilation[1];
        const index_t plane = (c * L.sh + dy % L.sh) * L.sw + dx % L.sw;
        taps.push_back(plane * L.plane() + dy / L.sh * L.Wp + dx / L.sw);
      }
  return taps;
}

// The residual, and the ReLU after it, that a band's copy applies (a block computed without them).
template <class T>
struct CopyEpilogue {
  const T* residual;  // laid out as y, or nullptr: a plain copy
  bool relu;
};

// out[0, rows * Q) = the first Q values of each of `rows` wide rows: one output channel's band,
// a contiguous run of y; with `ep.residual`, relu(value + residual[i]) for out[i] (ReLU if
// ep.relu). Streamed as one run: rows streamed one by one left ordinary stores between them in
// the same cache lines, which cost AlexNet's 55-wide rows a third of the layer.
template <class T>
void copy_band_out(const T* wide_rows, index_t Wp, index_t Q, index_t rows, bool stream, const CopyEpilogue<T>& ep,
                   T* out) {
  write_blocks(out, rows * Q, stream, [&](T* dst, index_t i0, index_t len) {
    for (index_t i = i0; i < i0 + len;) {
      const index_t r = i / Q, q = i % Q, n = std::min(Q - q, i0 + len - i);
      const T* src = wide_rows + r * Wp + q;
      if (ep.residual)
        add_residual(src, ep.residual + i, n, ep.relu, dst + (i - i0));
      else
        std::memcpy(dst + (i - i0), src, n * sizeof(T));
      i += n;
    }
  });
}

// One band of output rows [p0, p0 + rows) of image n.
struct Band {
  index_t n, p0, rows;
};

std::vector<Band> bands(const Conv2dShape& s, const PhaseLayout& L) {
  std::vector<Band> out;
  for (index_t n = 0; n < s.N; ++n)
    for (index_t p0 = 0; p0 < s.P; p0 += L.band_rows) out.push_back({n, p0, std::min(L.band_rows, s.P - p0)});
  return out;
}

// The memory traffic around a band's GEMM, done a share after each of its tile columns rather
// than in bursts between GEMMs, where it had stalled the arithmetic: streaming out the output
// block of the previous band (or group) and prefetching the input rows of the next band into
// L2 for its phase copy.
template <class T>
struct BandTraffic {
  const Conv2dShape& s;
  const PhaseLayout& L;
  const T* x;
  T* y;
  bool stream;
  CopyEpilogue<T> epilogue;  // the residual (and the ReLU after it) added on the way into y

  struct Output {  // a finished block still to be copied into y
    const T* block = nullptr;
    Band band{};
    index_t g = 0, wide = 0, channels_done = 0;
  } pending;
  NextRowsPrefetch next_input;

  // Copies the pending block's channels up to `until` (of K/G) into y.
  void copy_out(index_t until) {
    const index_t Kg = s.K_per_group();
    for (; pending.block && pending.channels_done < std::min(until, Kg); ++pending.channels_done) {
      const index_t k = pending.channels_done;
      const Band& band = pending.band;
      const index_t at = ((band.n * s.K + pending.g * Kg + k) * s.P + band.p0) * s.Q;
      copy_band_out(pending.block + k * pending.wide, L.Wp, s.Q, band.rows, stream,
                    {epilogue.residual ? epilogue.residual + at : nullptr, epilogue.relu}, y + at);
    }
  }
  void finish_output() {
    copy_out(s.K_per_group());
    pending.block = nullptr;
  }
  void set_output(const T* block, const Band& band, index_t g, index_t wide) {
    finish_output();
    pending = {block, band, g, wide, 0};
  }

  // The input rows band `next` will copy into its phases.
  void set_next_input(const Band* next) {
    if (!next) return next_input.clear();
    const index_t top = next->p0 * L.sh - s.p.pad_begin[0];
    next_input.set(x + next->n * s.C * s.H * s.W, s.C, s.H, s.W, top, top + (next->rows + L.row_shift + 1) * L.sh);
  }

  // After tile column `step` of `steps`: the shares of output and input due by then.
  void share(index_t step, index_t steps) {
    copy_out(ceil_div((step + 1) * s.K_per_group(), steps));
    next_input.share(step, steps);
  }
};

// The most values a band's phase planes may hold. A band copies its input rows into
// stride_h * stride_w phase planes, each as wide as an output row: a stride much larger than the
// image (legal: one output pixel) would ask for stride^2 planes, or wrap the size around int64.
constexpr index_t kMaxPhaseValues = index_t(1) << 32;

}  // namespace

const char* implicit_gemm_unsupported_reason(const Conv2dShape& s) {
  if (s.is_pointwise()) return nullptr;  // runs the plain GEMM
  const index_t sh = s.p.stride[0], sw = s.p.stride[1];
  // a band of one output row: PhaseLayout's plane() with band_rows = 1
  const index_t row_shift = (s.R - 1) * s.p.dilation[0] / sh, wide = s.Q + (s.S - 1) * s.p.dilation[1] / sw;
  index_t n = 0;
  if (mul_overflows(s.C, sh, &n) || mul_overflows(n, sw, &n) || mul_overflows(n, row_shift + 2, &n) ||
      mul_overflows(n, wide, &n) || n > kMaxPhaseValues)
    return "implicit GEMM copies the input into stride_h x stride_w phase planes, more than 2^32 values for this "
           "stride (use im2col)";
  return nullptr;
}

template <class T>
void conv2d_forward_implicit_gemm(const Conv2dShape& s, const T* x, const T* w, const T* bias, const T* residual,
                                  bool relu, T* y) {
  // A pointwise convolution's column matrix is its input: the plain GEMM reads it in place.
  if (s.is_pointwise()) return conv2d_forward_im2col(s, x, w, bias, residual, relu, y);
  const index_t G = s.groups(), Kg = s.K_per_group(), CRSg = s.column_rows() / G;
  const PhaseLayout L(s, sizeof(T));
  const auto weights = packed_weights(s, w);
  std::vector<std::vector<index_t>> taps;
  for (index_t g = 0; g < G; ++g) taps.push_back(tap_offsets(s, L, g));
  const std::vector<Band> work = bands(s, L);
  // Output rows of whole tiles go straight into y, with ordinary stores: the stem ran 5-11%
  // faster so than through blocks streamed out, and 2-7% faster than with the micro-kernel's
  // stores streamed (measured alternating in one process, 2 threads).
  const index_t nr = gemm::active_kernels<T>(Kg).nr;
  const bool direct = s.Q % nr == 0;
  // Blocks are streamed out only when y alone overflows the last-level cache (stream_output
  // counts an input of y's size beside it): AlexNet's 18.6 MB ran 9% slower streamed.
  const bool stream = !direct && stream_output(static_cast<std::size_t>(s.N * s.K * s.pixels()) * sizeof(T) / 2);
  // Bands are taken one at a time from a shared counter: a thread slowed by another tenant
  // takes fewer, and the others do not wait for it at the end.
  std::atomic<index_t> next_band{0};
  const index_t count = static_cast<index_t>(work.size());
  parallel_for(0, std::min<index_t>(num_threads(), count), 1, [&](index_t, index_t) {
    // The GEMM runs whole tiles only: a band's wide pixels are rounded up to the tile width,
    // and the phases get that many values of slack, which the last tiles' dropped columns read.
    const index_t phases_size = s.C * L.sh * L.sw * L.plane();
    T* phases = thread_scratch<T>(phases_size + nr, ScratchSlot::columns);
    std::fill(phases + phases_size, phases + phases_size + nr, T(0));
    // Two output blocks: one being computed while the other is copied into y.
    const index_t block_size = direct ? 0 : Kg * round_up(L.band_rows * L.Wp, nr);
    T* blocks = direct ? nullptr : thread_scratch<T>(2 * block_size, ScratchSlot::band_output);
    // A block's copy into y adds the residual, and so the ReLU that must follow it.
    BandTraffic<T> traffic{s, L, x, y, stream, {residual, relu}};
    const auto between = [&](index_t step, index_t steps) { traffic.share(step, steps); };
    index_t flip = 0;
    // The next band is taken before this one is computed, so that its input can be prefetched.
    for (index_t i = next_band.fetch_add(1, std::memory_order_relaxed); i < count;) {
      const index_t next = next_band.fetch_add(1, std::memory_order_relaxed);
      const Band& band = work[i];
      copy_band_phases(s, L, x + band.n * s.C * s.H * s.W, band.p0, band.rows, phases);
      traffic.set_next_input(next < count ? &work[next] : nullptr);
      for (index_t g = 0; g < G; ++g, flip ^= 1) {
        const T* group_bias = bias ? bias + g * Kg : nullptr;
        if (direct) {
          const index_t at = ((band.n * s.K + g * Kg) * s.P + band.p0) * s.Q;
          const gemm::Epilogue<T> ep{T(1), T(0), group_bias, relu, residual ? residual + at : nullptr};
          gemm::gemm_gathered(Kg, {band.rows, s.Q / nr, L.Wp, s.Q}, CRSg, weights[g], phases, taps[g].data(), y + at,
                              s.P * s.Q, ep, between);
        } else {
          T* block = blocks + flip * block_size;
          const index_t wide = round_up(band.rows * L.Wp, nr);
          const gemm::Epilogue<T> ep{T(1), T(0), group_bias, relu && !residual};
          gemm::gemm_gathered(Kg, {1, wide / nr}, CRSg, weights[g], phases, taps[g].data(), block, wide, ep, between);
          traffic.set_output(block, band, g, wide);
        }
      }
      i = next;
    }
    traffic.finish_output();
    if (stream) stream_fence();
  });
}

// The stride-1 input gradient as the forward above: a convolution of grad_y with the rotated,
// channel-transposed weights (packing.h), padded by (R-1)*dilation less the forward's padding
// on each side. Against im2col's GEMM and col2im 1.5-2.2x faster, and 1.15-1.2x direct's
// (conv7x7_s1 11.2 -> 9.5 ms, conv5x5 11.5 -> 9.5, 2 threads, Xeon, AVX-512).
// Other shapes run im2col's (conv.cpp's input_gradient_kernel): one arriving here is a bug.
template <class T>
void conv2d_backward_input_implicit_gemm(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  if (!implicit_input_gradient_fits(s))
    fail<std::logic_error>("implicit GEMM's input gradient: the shape is not a stride-1 forward (run im2col's)");
  Conv2dParams rotated_params = s.p;
  const index_t kernel[2] = {s.R, s.S};
  for (int i = 0; i < 2; ++i) {
    rotated_params.pad_begin[i] = (kernel[i] - 1) * s.p.dilation[i] - s.p.pad_begin[i];
    rotated_params.pad_end[i] = (kernel[i] - 1) * s.p.dilation[i] - s.p.pad_end[i];
  }
  const Conv2dShape rotated_shape({s.N, s.K, s.P, s.Q}, {s.C, s.K_per_group(), s.R, s.S}, rotated_params);
  const std::vector<T> rotated = rotated_transposed_weights(s, w);
  conv2d_forward_implicit_gemm<T>(rotated_shape, grad_y, rotated.data(), nullptr, nullptr, false, grad_x);
}

#define FASTCONV_INSTANTIATE(T)                                                                          \
  template void conv2d_forward_implicit_gemm<T>(const Conv2dShape&, const T*, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_implicit_gemm<T>(const Conv2dShape&, const T*, const T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
