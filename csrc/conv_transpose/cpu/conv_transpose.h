// conv_transpose2d on the CPU through the equivalent convolution (conv_transpose/conv_transpose.h):
// its forward is conv2d's input gradient, its input gradient conv2d's forward, its weight
// gradient conv2d's weight gradient with the roles of input and output gradient swapped; or its
// forward by sub-pixel decomposition (subpixel.cpp), this family's own algorithm.
#pragma once
#include "conv/conv.h"

namespace fastconv::conv_transpose::cpu {

// With s = equivalent_conv2d(...): x has s.output_shape(), y s.input_shape(), w s.weight_shape().
// `algo` runs the conv2d kernel each one is: the input gradient for the forward, the forward
// for the input gradient, the weight gradient for the weight gradient.
template <class T>
void conv_transpose2d_forward(conv::Algo algo, const conv::Conv2dShape& s, const T* x, const T* w, const T* bias,
                              T* y);

// grad_x with input_algo, grad_w (and grad_bias) with weight_algo, each skipped when null;
// overwrites them. When both run im2col they share one column matrix of grad_y.
template <class T>
void conv_transpose2d_backward(conv::Algo input_algo, conv::Algo weight_algo, const conv::Conv2dShape& s, const T* x,
                               const T* w, const T* grad_y, T* grad_x, T* grad_w, T* grad_bias);

// --- sub-pixel decomposition (subpixel.cpp): the forward as stride_h x stride_w stride-1
// convolutions, one per output phase, and the weight gradient as the same phases' GEMMs ---
// nullptr, or why it cannot run `s` (dilation above 1).
const char* subpixel_unsupported_reason(const conv::Conv2dShape& s);
// y = conv_transpose2d(x, w) + bias (nullable), shapes as conv_transpose2d_forward's. Overwrites y.
template <class T>
void conv_transpose2d_forward_subpixel(const conv::Conv2dShape& s, const T* x, const T* w, const T* bias, T* y);
// grad_w of conv_transpose2d (shapes as conv_transpose2d_backward's), overwritten.
template <class T>
void conv_transpose2d_backward_weight_subpixel(const conv::Conv2dShape& s, const T* x, const T* grad_y, T* grad_w);

}  // namespace fastconv::conv_transpose::cpu
