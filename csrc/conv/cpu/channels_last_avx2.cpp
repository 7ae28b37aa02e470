// channels_last.h's kernel for AVX2 (channels_last_rows.h over core/simd_avx2.h's vectors): blocks
// of 6 pixels x 2 vectors of channels, or 12 pixels x 1 when the channels fit one vector.
#include "core/arch.h"
#if FASTCONV_X86  // the whole file: AVX2 is x86 only
#pragma GCC target("avx2,fma")
#include "conv/cpu/channels_last_rows.h"
#include "core/simd_avx2.h"

namespace fastconv::conv::cpu::channels_last {

template <>
void pixels_avx2(const DirectPass<float>& pass, index_t lo, index_t hi) {
  pixel_blocks<simd::Avx2F32, 12, 6>(pass, lo, hi);
}
template <>
void pixels_avx2(const DirectPass<double>& pass, index_t lo, index_t hi) {
  pixel_blocks<simd::Avx2F64, 12, 6>(pass, lo, hi);
}
template <>
void depthwise_pixels_avx2(const DirectPass<float>& pass, index_t lo, index_t hi, const float** sources) {
  depthwise_pixel_blocks<simd::Avx2F32, 12, 6>(pass, lo, hi, sources);
}
template <>
void depthwise_pixels_avx2(const DirectPass<double>& pass, index_t lo, index_t hi, const double** sources) {
  depthwise_pixel_blocks<simd::Avx2F64, 12, 6>(pass, lo, hi, sources);
}
template <>
void depthwise_rows_avx2(const DirectPass<float>& pass, index_t lo, index_t hi) {
  depthwise_rows<simd::Avx2F32, 4>(pass, lo, hi);
}
template <>
void depthwise_rows_avx2(const DirectPass<double>& pass, index_t lo, index_t hi) {
  depthwise_rows<simd::Avx2F64, 4>(pass, lo, hi);
}
template <>
void depthwise_weight_rows_avx2(const Geometry& g, const float* x, const float* dy, const float* zero_row,
                                const DepthwiseWeightPart& part, float* image_sums, double* sums) {
  depthwise_weight_rows<simd::Avx2F32, 2>(g, x, dy, zero_row, part, image_sums, sums);
}
template <>
void depthwise_weight_rows_avx2(const Geometry& g, const double* x, const double* dy, const double* zero_row,
                                const DepthwiseWeightPart& part, double* image_sums, double* sums) {
  depthwise_weight_rows<simd::Avx2F64, 2>(g, x, dy, zero_row, part, image_sums, sums);
}
template <>
void weight_images_avx2(const Geometry& g, bool nchw, const float* x, const float* dy, double* sums, index_t lo,
                          index_t hi) {
  weight_images<simd::Avx2F32, 3, 4>(g, nchw, x, dy, sums, lo, hi);
}
template <>
void weight_images_avx2(const Geometry& g, bool nchw, const double* x, const double* dy, double* sums, index_t lo,
                          index_t hi) {
  weight_images<simd::Avx2F64, 3, 4>(g, nchw, x, dy, sums, lo, hi);
}
template <>
void block_shape_avx2<float>(index_t K, index_t* mr, index_t* block) {
  shape_for<simd::Avx2F32, 12, 6>(K, mr, block);
}
template <>
void block_shape_avx2<double>(index_t K, index_t* mr, index_t* block) {
  shape_for<simd::Avx2F64, 12, 6>(K, mr, block);
}

}  // namespace fastconv::conv::cpu::channels_last

#endif  // FASTCONV_X86
