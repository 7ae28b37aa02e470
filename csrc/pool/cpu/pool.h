// The pooling kernels (pool/pool.h) on the CPU, one plane (image, channel) per task. Their
// arrays are checked by pool/pool.cpp.
#pragma once
#include <cstdint>

#include "common/pool_geometry.h"
#include "core/view.h"
#include "pool/pool.h"

namespace fastconv::pool::cpu {

// indices may be null (inference): only the maxima are written.
// Each kernel has a twin over channels_last memory (N, H, W, C) in pool_channels_last.cpp, with
// the same arguments, the arrays in that layout.
template <class T>
void max_pool2d_forward(const Pool2dShape& s, const T* x, T* y, std::int64_t* indices);
template <class T>
void max_pool2d_backward(const Pool2dShape& s, const T* grad_y, const std::int64_t* indices, T* grad_x);

// divisor_override 0: none.
template <class T>
void avg_pool2d_forward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override, const T* x, T* y);
template <class T>
void avg_pool2d_backward(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                         const T* grad_y, T* grad_x);

template <class T>
void adaptive_avg_pool2d_forward(const Pool2dShape& s, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward(const Pool2dShape& s, const T* grad_y, T* grad_x);

template <class T>
void max_pool2d_forward_channels_last(const Pool2dShape& s, const T* x, T* y, std::int64_t* indices);
template <class T>
void max_pool2d_backward_channels_last(const Pool2dShape& s, const T* grad_y, const std::int64_t* indices,
                                       T* grad_x);
template <class T>
void avg_pool2d_forward_channels_last(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                                      const T* x, T* y);
template <class T>
void avg_pool2d_backward_channels_last(const Pool2dShape& s, bool count_include_pad, index_t divisor_override,
                                       const T* grad_y, T* grad_x);
template <class T>
void adaptive_avg_pool2d_forward_channels_last(const Pool2dShape& s, const T* x, T* y);
template <class T>
void adaptive_avg_pool2d_backward_channels_last(const Pool2dShape& s, const T* grad_y, T* grad_x);

// What both layouts' kernels share.

// PyTorch's divide_factor of avg_pool2d for the window of extents h and w.
template <class T>
T avg_divisor(bool count_include_pad, index_t divisor_override, const AvgExtent& h, const AvgExtent& w) {
  if (divisor_override) return T(divisor_override);
  if (count_include_pad) return T(h.padded_size * w.padded_size);
  return T((h.end - h.start) * (w.end - w.start));
}

}  // namespace fastconv::pool::cpu
