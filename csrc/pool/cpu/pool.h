// The pooling kernels (pool/pool.h) on the CPU, one plane (image, channel) per task. Their
// arrays are checked by pool/pool.cpp.
#pragma once
#include <cstdint>

#include "core/view.h"
#include "pool/pool.h"

namespace fastconv::pool::cpu {

// indices may be null (inference): only the maxima are written.
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

}  // namespace fastconv::pool::cpu
