// Copies between the two memory layouts of an (N, C, H, W) array: NCHW (C-contiguous) and
// channels_last (NHWC memory, core/tensor_arg.h). Each image is a [C x H*W] matrix in one and its
// transpose in the other, so the copy is one transpose per image: 8x8 (4x4 for doubles) blocks
// transposed in registers on AVX2 and AVX-512 machines, both sides read and written a block row at
// a time. numpy's copy through a strided view took 3-10x a plain copy's time; this is what
// conv2d's channels_last calls on NCHW copies pay twice (ops/conv.py).
#pragma once
#include <array>

#include "core/tensor_arg.h"

namespace fastconv {

// dst = src for two float arrays of one shape (N, C, H, W) and dtype, each C-contiguous or
// channels_last; ValueError naming the argument otherwise.
void copy_layout(const TensorArg& src, const TensorArg& dst);

// The sub-pixel rearrangements of torch.nn.functional.pixel_shuffle / pixel_unshuffle between a
// deep (N, C r^2, H, W) and a wide (N, C, H r, W r) C-contiguous array of one float dtype:
// channel c r^2 + a r + b of the deep array is pixel (h r + a, w r + b) of the wide one's
// channel c. pixel_shuffle writes the wide dst from the deep src, pixel_unshuffle the deep dst
// from the wide src; ValueError naming the argument for shapes that do not match, factor < 1.
void pixel_shuffle(const TensorArg& src, const TensorArg& dst, index_t factor);
void pixel_unshuffle(const TensorArg& src, const TensorArg& dst, index_t factor);
// factor^2, checked: factor >= 1 (ValueError naming `factor`), the square within int64.
index_t factor_squared(index_t factor);
// The wide shape of a deep one (N, C r^2, H, W) -> (N, C, H r, W r), checked in int64 (channels
// a multiple of factor^2; ValueError naming `deep_name` otherwise).
std::array<index_t, 4> wide_shape(const std::array<index_t, 4>& deep, index_t factor, const char* deep_name);

// dst[j][i] = src[i][j] for the rows x cols matrix at src (row stride cols) and dst (row stride
// rows), over rows [r0, r1) and all columns: per ISA (layout_avx2.cpp) and portable.
template <class T>
void transpose_rows_avx2(const T* src, T* dst, index_t rows, index_t cols, index_t r0, index_t r1);
// dst[j * ld + i] = src[i * ls + j] for i < rows, j < cols, in 8x8 (4x4) blocks in registers
// (AVX2 machines only).
template <class T>
void transpose_avx2(const T* src, index_t ls, T* dst, index_t ld, index_t rows, index_t cols);

}  // namespace fastconv
