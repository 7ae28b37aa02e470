// Blocks of an image's channels in NHWC memory: the work split of interpolate's channels_last
// backward, and the zeroing of a block (both channels_last backward kernels).
#pragma once
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "core/scratch.h"

namespace fastconv::sampling::cpu {

// One work item: channels [first, first + count) of image n; in NHWC memory a pixel's block of
// channels is C values from the next pixel's.
struct ChannelBlock {
  index_t n, first, count;
};

// Calls body(block) for every block of every image of an (N, C) batch, in parallel: the work
// split of a channels_last backward that scatters across pixels, where each block must have one
// writer. An image's channels are split so that a small batch still gives every thread work, in
// blocks of whole cache lines (16 floats) where C allows.
template <class Body>
void for_each_channel_block(index_t N, index_t C, const Body& body) {
  if (N * C == 0) return;
  constexpr index_t kLine = 16;
  const index_t per_image = ceil_div(num_threads(), N);
  const index_t size = std::min(C, round_up(ceil_div(C, per_image), kLine));
  const index_t blocks = ceil_div(C, size);
  parallel_for(0, N * blocks, 1, [&](index_t lo, index_t hi) {
    for (index_t item = lo; item < hi; ++item) {
      const index_t first = item % blocks * size;
      body(ChannelBlock{item / blocks, first, std::min(size, C - first)});
    }
  });
}

// Zeroes `count` channels of each of `pixels` pixels, `channels` values apart.
template <class T>
void zero_block(T* block, index_t pixels, index_t channels, index_t count) {
  for (index_t i = 0; i < pixels; ++i) std::memset(block + i * channels, 0, sizeof(T) * count);
}

}  // namespace fastconv::sampling::cpu
