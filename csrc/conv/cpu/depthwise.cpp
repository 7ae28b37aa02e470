// Direct depthwise convolution (one input channel per group, any channel multiplier, stride,
// padding and dilation). A GEMM per group would have a single row: pure packing overhead.
// Each output plane is a sum of R*S shifted, scaled input rows. With AVX2 or AVX-512 (and stride 1
// along the width) depthwise.h's kernels sum an output row's taps in registers straight from the
// input, and the weight gradient sums every tap's products in registers over a whole plane;
// otherwise plain loops run along contiguous rows, touching every plane once per kernel tap.
#include <cstdint>
#include <vector>

#include "conv/cpu/depthwise.h"
#include "conv/cpu/kernels.h"
#include "conv/cpu/packing.h"
#include "core/isa.h"
#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv::conv::cpu {

namespace {

// dst[q] += weight * src[q * stride] for q in `qs` (src already offset by the tap).
template <class T>
inline void axpy_row(T* __restrict dst, const T* __restrict src, T weight, index_t stride, Range qs) {
  if (stride == 1) {
#pragma GCC ivdep
    for (index_t q = qs.lo; q < qs.hi; ++q) dst[q] += weight * src[q];
  } else {
    for (index_t q = qs.lo; q < qs.hi; ++q) dst[q] += weight * src[q * stride];
  }
}

// Calls tap(r, s, p, ih, w_offset, qs) for every kernel tap and output row that reads inside the
// input: the loop nest shared by the three kernels. The in-image ranges depend only on the tap,
// so they are computed once per tap, not per row.
template <class Fn>
void for_each_tap_row(const Conv2dShape& s, const Fn& tap) {
  const auto& prm = s.p;
  for (index_t r = 0; r < s.R; ++r) {
    const index_t h_offset = r * prm.dilation[0] - prm.pad_begin[0];
    const Range ps = valid_range(h_offset, prm.stride[0], s.H, s.P);
    for (index_t k = 0; k < s.S; ++k) {
      const index_t w_offset = k * prm.dilation[1] - prm.pad_begin[1];
      const Range qs = valid_range(w_offset, prm.stride[1], s.W, s.Q);
      for (index_t p = ps.lo; p < ps.hi; ++p) tap(r, k, p, p * prm.stride[0] + h_offset, w_offset, qs);
    }
  }
}

}  // namespace

namespace {

// depthwise.h's Taps and the lane masks they point to, for vectors of `width` lanes along an
// output row of out_w pixels whose tap s reads input column q + s * dw + left of in_w.
class TapMasks {
 public:
  TapMasks(const depthwise::Taps& geometry, index_t out_w, index_t in_w, index_t width) : taps(geometry) {
    const index_t vectors = ceil_div(out_w, width), S = taps.S;
    lanes_.assign(vectors * S, 0);
    out_.assign(vectors, 0);
    for (index_t q = 0; q < out_w; ++q) {
      const index_t v = q / width;
      const std::uint32_t lane = 1u << (q % width);
      out_[v] |= lane;
      for (index_t s = 0; s < S; ++s)
        if (q + s * taps.dw + taps.left >= 0 && q + s * taps.dw + taps.left < in_w) lanes_[v * S + s] |= lane;
    }
    taps.lane_bits = lanes_.data();
    taps.out_bits = out_.data();
  }
  TapMasks(const TapMasks&) = delete;  // taps points into it
  TapMasks& operator=(const TapMasks&) = delete;

  depthwise::Taps taps;

 private:
  std::vector<std::uint32_t> lanes_, out_;  // [v][s], [v]
};

// The taps of the forward and of the weight gradient: output (p, q) reads input (p * stride +
// r * dilation - pad, q + s * dilation - pad).
TapMasks forward_taps(const Conv2dShape& s, index_t width) {
  const auto& prm = s.p;
  return TapMasks({s.R, s.S, -prm.pad_begin[0], -prm.pad_begin[1], prm.stride[0], prm.dilation[0], prm.dilation[1],
                   nullptr, nullptr},
                  s.Q, s.W, width);
}

template <class T>
index_t vector_width(Isa isa) {
  return (isa >= Isa::avx512 ? 64 : 32) / static_cast<index_t>(sizeof(T));
}

// The vector kernel of `isa` (AVX2 or AVX-512) over output planes [lo, hi).
template <class T>
void planes_of(Isa isa, const depthwise::PlanePass<T>& pass, index_t lo, index_t hi) {
#if FASTCONV_X86
  if (isa >= Isa::avx512) return depthwise::planes_avx512(pass, lo, hi);
  depthwise::planes_avx2(pass, lo, hi);
#endif
}

// The vector weight-gradient kernel of `isa` over channels [lo, hi).
template <class T>
void weights_of(Isa isa, const depthwise::WeightPass<T>& pass, index_t lo, index_t hi) {
#if FASTCONV_X86
  if (isa >= Isa::avx512) return depthwise::weights_avx512(pass, lo, hi);
  depthwise::weights_avx2(pass, lo, hi);
#endif
}

template <class T>
void run_planes(Isa isa, const depthwise::PlanePass<T>& pass, index_t count) {
  parallel_for_dynamic(0, count, [&](index_t lo, index_t hi) { planes_of(isa, pass, lo, hi); });
}

// The vector input gradient's pass (stride 1) and the tables it points into: grad_x[c] = the sum
// over its `multiplier` outputs k of grad_y[k] correlated with w[k] rotated (packing.h's
// rotated_transposed_weights).
template <class T>
struct InputGradientPlanes {
  std::vector<T> rotated, zero_row;
  TapMasks masks;
  depthwise::PlanePass<T> pass;

  InputGradientPlanes(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x, index_t width)
      : rotated(rotated_transposed_weights(s, w)),
        zero_row(s.Q, T(0)),
        masks({s.R, s.S, s.p.pad_begin[0] - (s.R - 1) * s.p.dilation[0], s.p.pad_begin[1] - (s.S - 1) * s.p.dilation[1],
               1, s.p.dilation[0], s.p.dilation[1], nullptr, nullptr},
              s.W, s.Q, width),
        pass{grad_y, s.K * s.pixels(), s.K_per_group() * s.pixels(), 1, s.K_per_group(), s.P, s.Q, rotated.data(),
             s.K_per_group() * s.R * s.S, nullptr, false, grad_x, s.C, s.H, s.W, zero_row.data(), masks.taps} {}
};

// The vector weight gradient's pass (stride 1 along the width), its tables and its double sums.
template <class T>
struct WeightGradientSums {
  TapMasks masks;
  std::vector<double> sums, bias_sums;
  std::vector<T> zero_row;
  depthwise::WeightPass<T> pass;

  WeightGradientSums(const Conv2dShape& s, const T* x, const T* grad_y, bool with_bias, index_t width)
      : masks(forward_taps(s, width)),
        sums(s.K * s.R * s.S, 0.0),
        bias_sums(s.K, 0.0),
        zero_row(s.W, T(0)),
        pass{x, s.C * s.H * s.W, s.K_per_group(), s.H, s.W, grad_y, s.K * s.pixels(), s.P, s.Q, s.N, sums.data(),
             with_bias ? bias_sums.data() : nullptr, zero_row.data(), masks.taps} {}
  // The same pass over image n alone.
  depthwise::WeightPass<T> image(index_t n) const {
    depthwise::WeightPass<T> one = pass;
    one.x += n * pass.x_image;
    one.dy += n * pass.dy_image;
    one.images = 1;
    return one;
  }
  void write(T* grad_w, T* grad_bias) const {
    for (std::size_t i = 0; i < sums.size(); ++i) grad_w[i] = static_cast<T>(sums[i]);
    for (std::size_t k = 0; grad_bias && k < bias_sums.size(); ++k) grad_bias[k] = static_cast<T>(bias_sums[k]);
  }
};

bool vector_input_gradient(const Conv2dShape& s, Isa isa) {
  return isa >= Isa::avx2 && s.p.stride[0] == 1 && s.p.stride[1] == 1;
}

bool vector_weight_gradient(const Conv2dShape& s, Isa isa) { return isa >= Isa::avx2 && s.p.stride[1] == 1; }

}  // namespace

template <class T>
void conv2d_forward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* bias, bool relu, T* y) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels();
  const auto& prm = s.p;
  if (const Isa isa = vector_isa(); isa >= Isa::avx2 && prm.stride[1] == 1) {
    const TapMasks masks = forward_taps(s, vector_width<T>(isa));
    const std::vector<T> zero_row(s.W, T(0));
    const depthwise::PlanePass<T> pass{x, s.C * HW, HW, multiplier, 1, s.H, s.W, w, s.R * s.S, bias, relu, y, s.K, s.P, s.Q,
                                       zero_row.data(), masks.taps};
    return run_planes(isa, pass, s.N * s.K);
  }
  parallel_for_dynamic(0, s.N * s.K, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      const index_t n = plane / s.K, k = plane % s.K;
      const T* in = x + (n * s.C + k / multiplier) * HW;
      const T* weight = w + k * s.R * s.S;
      T* out = y + plane * PQ;
      std::fill(out, out + PQ, bias ? bias[k] : T(0));
      for_each_tap_row(s, [&](index_t r, index_t c, index_t p, index_t ih, index_t w_offset, Range qs) {
        axpy_row(out + p * s.Q, in + ih * s.W + w_offset, weight[r * s.S + c], s.p.stride[1], qs);
      });
      if (relu)
        for (index_t i = 0; i < PQ; ++i) out[i] = out[i] < T(0) ? T(0) : out[i];
    }
  });
}

template <class T>
void conv2d_backward_input_depthwise(const Conv2dShape& s, const T* grad_y, const T* w, T* grad_x) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels();
  if (const Isa isa = vector_isa(); vector_input_gradient(s, isa)) {
    const InputGradientPlanes<T> planes(s, grad_y, w, grad_x, vector_width<T>(isa));
    return run_planes(isa, planes.pass, s.N * s.C);
  }
  // One writer per input plane: the `multiplier` output channels reading it are summed here.
  parallel_for_dynamic(0, s.N * s.C, [&](index_t lo, index_t hi) {
    for (index_t plane = lo; plane < hi; ++plane) {
      const index_t n = plane / s.C, c = plane % s.C;
      T* dx = grad_x + plane * HW;
      std::fill(dx, dx + HW, T(0));
      for (index_t k = c * multiplier; k < (c + 1) * multiplier; ++k) {
        const T* dy = grad_y + (n * s.K + k) * PQ;
        const T* weight = w + k * s.R * s.S;
        for_each_tap_row(s, [&](index_t r, index_t col, index_t p, index_t ih, index_t w_offset, Range qs) {
          T* dst = dx + ih * s.W + w_offset;
          const T* src = dy + p * s.Q;
          const T wv = weight[r * s.S + col];
          for (index_t q = qs.lo; q < qs.hi; ++q) dst[q * s.p.stride[1]] += wv * src[q];
        });
      }
    }
  });
}

template <class T>
void conv2d_backward_weight_depthwise(const Conv2dShape& s, const T* x, const T* grad_y, T* grad_w, T* grad_bias) {
  const index_t multiplier = s.K_per_group(), HW = s.H * s.W, PQ = s.pixels(), RS = s.R * s.S;
  if (const Isa isa = vector_isa(); vector_weight_gradient(s, isa)) {
    // Image by image over each thread's channels, whose planes of an image lie together (channel
    // by channel over all images, every 3 KB plane of 32x128x28x28 started a new stream: 0.90-0.93
    // ms against 0.85-0.87, 2 threads). Each channel's sums still add image after image.
    WeightGradientSums<T> sums(s, x, grad_y, grad_bias != nullptr, vector_width<T>(isa));
    parallel_for_dynamic(0, s.K, [&](index_t lo, index_t hi) {
      for (index_t n = 0; n < s.N; ++n) weights_of(isa, sums.image(n), lo, hi);
    });
    return sums.write(grad_w, grad_bias);
  }
  parallel_for_dynamic(0, s.K, [&](index_t lo, index_t hi) {
    std::vector<double> acc(RS);  // N*P*Q products per tap: accumulate wide
    for (index_t k = lo; k < hi; ++k) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (index_t n = 0; n < s.N; ++n) {
        const T* in = x + (n * s.C + k / multiplier) * HW;
        const T* dy = grad_y + (n * s.K + k) * PQ;
        for_each_tap_row(s, [&](index_t r, index_t col, index_t p, index_t ih, index_t w_offset, Range qs) {
          const T* src = in + ih * s.W + w_offset;
          const T* g = dy + p * s.Q;
          T sum = 0;
          for (index_t q = qs.lo; q < qs.hi; ++q) sum += g[q] * src[q * s.p.stride[1]];
          acc[r * s.S + col] += sum;
        });
      }
      for (index_t i = 0; i < RS; ++i) grad_w[k * RS + i] = static_cast<T>(acc[i]);
    }
  });
  if (grad_bias) conv2d_bias_grad(s, grad_y, grad_bias);
}

// Both gradients with one read of grad_y from memory: image by image, for each input channel c,
// grad_x's plane, then the weight gradients of the outputs that read c, from the gradient planes
// the first has just brought into cache (apart, each kernel reads all of grad_y; 32 x 128 x 28 x
// 28, 2 threads, AVX-512: 1.53-1.65 ms against 1.65-1.81). Every sum is the separate kernels'
// in their order, so the results are theirs bit for bit. Channels are spread over the threads,
// so a call with few channels runs the kernels apart.
constexpr index_t kFusedChannelsPerThread = 8;

template <class T>
void conv2d_backward_depthwise(const Conv2dShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                               T* grad_bias) {
  const Isa isa = vector_isa();
  if (!vector_input_gradient(s, isa) || s.C < kFusedChannelsPerThread * num_threads()) {
    conv2d_backward_input_depthwise(s, grad_y, w, grad_x);
    return conv2d_backward_weight_depthwise(s, x, grad_y, grad_w, grad_bias);
  }
  const index_t width = vector_width<T>(isa), multiplier = s.K_per_group();
  const InputGradientPlanes<T> planes(s, grad_y, w, grad_x, width);
  WeightGradientSums<T> sums(s, x, grad_y, grad_bias != nullptr, width);
  parallel_for_dynamic(0, s.C, [&](index_t lo, index_t hi) {
    for (index_t n = 0; n < s.N; ++n)  // image by image: each thread's planes of an image lie together
      for (index_t c = lo; c < hi; ++c) {
        planes_of(isa, planes.pass, n * s.C + c, n * s.C + c + 1);
        weights_of(isa, sums.image(n), c * multiplier, (c + 1) * multiplier);
      }
  });
  sums.write(grad_w, grad_bias);
}

#define FASTCONV_INSTANTIATE(T)                                                                        \
  template void conv2d_forward_depthwise<T>(const Conv2dShape&, const T*, const T*, const T*, bool, T*); \
  template void conv2d_backward_input_depthwise<T>(const Conv2dShape&, const T*, const T*, T*);          \
  template void conv2d_backward_weight_depthwise<T>(const Conv2dShape&, const T*, const T*, T*, T*);     \
  template void conv2d_backward_depthwise<T>(const Conv2dShape&, const T*, const T*, const T*, T*, T*, T*);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::conv::cpu
