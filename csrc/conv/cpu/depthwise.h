// The vector kernels of the depthwise convolution (depthwise.cpp), for stride 1 along the width,
// one copy per ISA (depthwise_avx2.cpp, depthwise_avx512.cpp over depthwise_rows.h).
//
// A vector of an output row reads, for tap (r, s), a vector of consecutive values of one input
// row, straight from the caller's array: no zero-padded copy of the plane. Rows outside the input
// read a row of zeros; columns outside it are lanes a masked load leaves at zero. Which lanes of vector v
// (pixels v * width ...) are inside for tap s is a bit mask computed once per call
// (lane_bits[v * S + s]), as is which are inside the output row (out_bits[v]).
#pragma once
#include <cstdint>

#include "core/view.h"

namespace fastconv::conv::cpu::depthwise {

// The taps' geometry: output (p, q) reads input row p * sh + r * dh + top and column
// q + s * dw + left, for r < R, s < S.
struct Taps {
  index_t R, S, top, left, sh, dh, dw;
  const std::uint32_t* lane_bits;  // [v][s]
  const std::uint32_t* out_bits;   // [v]
};

// Output planes o in [lo, hi), o = n * planes + j: out[o] = bias[j] + the sum over `inputs`
// consecutive input planes i of the taps of plane i with weights w + j * w_step + i * R * S.
// Plane j of image n reads from in + n * in_image + (j / per_input) * in_step: the forward's
// `per_input` output channels share one input channel; the input gradient's one output (an input
// channel) reads `inputs` = multiplier gradient planes.
template <class T>
struct PlanePass {
  const T* in;
  index_t in_image, in_step, per_input, inputs, in_h, in_w;
  const T* w;
  index_t w_step;
  const T* bias;  // [planes], or null
  bool relu;
  T* out;
  index_t planes, out_h, out_w;
  const T* zero_row;  // in_w zeros: what a tap reads in the padding's rows
  Taps taps;
};

// Weight gradients of channels k in [lo, hi): sums[k][r][s] += the sum over `images` images and
// output pixels of dy[n][k][p][q] * x[n][k / multiplier][input row][input column] (Taps' rows and
// columns), each image's sum in T, added into the double sums.
template <class T>
struct WeightPass {
  const T* x;
  index_t x_image, multiplier, in_h, in_w;
  const T* dy;
  index_t dy_image, out_h, out_w, images;
  double* sums;
  double* bias_sums;  // [k] += the sum of dy[n][k], or null
  const T* zero_row;  // in_w zeros: what a tap reads in the padding's rows
  Taps taps;
};

template <class T>
void planes_avx2(const PlanePass<T>& pass, index_t lo, index_t hi);
template <class T>
void planes_avx512(const PlanePass<T>& pass, index_t lo, index_t hi);
template <class T>
void weights_avx2(const WeightPass<T>& pass, index_t lo, index_t hi);
template <class T>
void weights_avx512(const WeightPass<T>& pass, index_t lo, index_t hi);

}  // namespace fastconv::conv::cpu::depthwise
