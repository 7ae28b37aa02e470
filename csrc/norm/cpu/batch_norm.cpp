// Fused batchnorm. Channels are independent, so each thread owns whole channels: a channel's
// planes (N strided runs of HW contiguous values) are reduced, then transformed while they are
// still in that core's cache, so DRAM sees about one read of x and one write of y.
#include "norm/cpu/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <initializer_list>

#include "core/errors.h"
#include "core/parallel.h"
#include "core/scratch.h"
#include "core/stream_store.h"
#include "norm/cpu/batch_norm_loops.h"

namespace fastconv::norm::cpu {

namespace {

// Calls run(n, i0, len, at) over channel c a run of kRun values at a time: image n's values
// [i0, i0 + len), at tensor offset `at`. A channel's planes are N runs of HW values C * HW
// apart, and the hardware prefetcher stops at each plane's page boundary, so each run first
// prefetches its place in the next plane of every array in `inputs` (BN forward 4.3 -> 3.7 ms
// at 64x64x32x32).
constexpr index_t kRun = 256;
template <class T, class Run>
void for_each_run(const BatchNormShape& s, index_t c, std::initializer_list<const T*> inputs, const Run& run) {
  for (index_t n = 0; n < s.N; ++n)
    for (index_t i0 = 0; i0 < s.HW; i0 += kRun) {
      const index_t at = (n * s.C + c) * s.HW + i0, len = std::min(kRun, s.HW - i0);
      if (n + 1 < s.N)
        for (const T* input : inputs)
          if (input) prefetch_span(input + at + s.C * s.HW, len);
      run(n, i0, len, at);
    }
}

// Whether the kernels' large output (grad_x, or y) bypasses the cache (core/stream_store.h).
template <class T>
bool streamed(const BatchNormShape& s) {
  return stream_output(static_cast<std::size_t>(s.N * s.C * s.HW) * sizeof(T));
}

// Mean and biased variance of channel c in one pass: sums of (x - shift) (moment_shift). A
// run's values are summed in T's lanes (a float lane adds a few dozen values), the runs' sums in
// double: converting every float to double had made this pass compute-bound.
template <class T>
Moments channel_moments(const BatchNormShape& s, const T* x, index_t c) {
  const T shift = moment_shift(x[c * s.HW]);
  const auto moments = batch_norm_loops<T>().moments;
  double sum = 0, sum_sq = 0;
  for_each_run<T>(s, c, {x}, [&](index_t, index_t, index_t len, index_t at) {
    T run, run_sq;
    moments(x + at, len, shift, &run, &run_sq);
    sum += run;
    sum_sq += run_sq;
  });
  return shifted_moments(shift, sum, sum_sq, static_cast<double>(s.count()));
}

// y = relu?((x - mean) * scale + beta + z?) over one channel.
template <class T>
void normalize_channel(const BatchNormShape& s, const BatchNormForward<T>& f, index_t c, double mean,
                       double invstd) {
  const T scale = static_cast<T>(invstd * (f.gamma ? f.gamma[c] : T(1)));
  const T beta = f.beta ? f.beta[c] : T(0), m = static_cast<T>(mean);
  const auto normalize = batch_norm_loops<T>().normalize[f.relu][f.residual != nullptr];
  const bool stream = streamed<T>(s);
  for (index_t n = 0; n < s.N; ++n) {
    const index_t offset = (n * s.C + c) * s.HW;
    write_blocks(f.y + offset, s.HW, stream, [&](T* y, index_t i0, index_t len) {
      normalize(f.x + offset + i0, f.residual ? f.residual + offset + i0 : nullptr, len, m, scale, beta, y);
    });
  }
  if (stream) stream_fence();
}

// The gradient reaching bn(x), g: grad_y where the ReLU passed it (PyTorch's threshold_backward
// zeroes it where the output is <= 0), grad_y itself without a ReLU. Image n's run at i0 of
// channel c is at + n * ld + i0. With a ReLU the first pass writes it as it forms the sums, so
// the second reads one array instead of two: into grad_residual when there is one (it is g),
// else into a per-thread buffer of the channel's N*HW values. Not into grad_x: the streamed
// stores of grad_x would then first write those cached lines back (16 MiB more traffic at
// 64x64x32x32).
template <class T>
struct ChannelGrad {
  T* at;
  index_t ld;
};

template <class T>
ChannelGrad<T> channel_grad(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, T* scratch) {
  if (!b.y) return {const_cast<T*>(b.grad_y) + c * s.HW, s.C * s.HW};  // read only
  if (b.grad_residual) return {b.grad_residual + c * s.HW, s.C * s.HW};
  return {scratch, s.HW};
}

struct GradSums {
  double grad, grad_xmu;  // sum of g and of g * (x - mean)
};

template <class T>
GradSums channel_grad_sums(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, ChannelGrad<T> g) {
  const T mean = b.mean[c];
  const auto grad_sums = batch_norm_loops<T>().grad_sums[b.y != nullptr];
  double sum = 0, sum_xmu = 0;
  for_each_run<T>(s, c, {b.x, b.grad_y, b.y}, [&](index_t n, index_t i0, index_t len, index_t at) {
    T run, run_xmu;
    grad_sums(b.grad_y + at, b.y ? b.y + at : nullptr, b.x + at, len, mean, g.at + n * g.ld + i0, &run, &run_xmu);
    sum += run;
    sum_xmu += run_xmu;
  });
  return {sum, sum_xmu};
}

// grad_x = k * g + (x - mean) * k_xmu + k_0; grad_residual = g too, copied here when there was
// no ReLU (with one, the first pass wrote it).
template <class T>
void channel_grad_input(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, const GradCoefficients& k,
                        ChannelGrad<T> g) {
  const T mean = b.mean[c];
  const bool copy_residual = b.grad_residual && !b.y;
  const auto grad_input = batch_norm_loops<T>().grad_input[copy_residual];
  const bool stream = streamed<T>(s);
  for (index_t n = 0; n < s.N; ++n) {
    const index_t offset = (n * s.C + c) * s.HW;
    write_blocks(b.grad_x + offset, s.HW, stream, [&](T* dx, index_t i0, index_t len) {
      grad_input(g.at + n * g.ld + i0, b.x + offset + i0, len, mean, T(k.k), T(k.k_xmu), T(k.k_0), dx,
                 copy_residual ? b.grad_residual + offset + i0 : nullptr);
    });
  }
  if (stream) stream_fence();
}

template <class T>
void channel_backward(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, T* scratch) {
  const ChannelGrad<T> g = channel_grad(s, b, c, scratch);
  const GradSums sums = channel_grad_sums(s, b, c, g);
  channel_grad_input(s, b, c, channel_grad_coefficients(s, b, c, sums.grad, sums.grad_xmu), g);
}

}  // namespace

template <class T>
void batch_norm_train_forward(const BatchNormShape& s, const BatchNormForward<T>& f, double momentum,
                              double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd) {
  if (!has_batch_statistics(s, save_mean, save_invstd)) return;
  parallel_for_dynamic(0, s.C, [&](index_t lo, index_t hi) {
    for (index_t c = lo; c < hi; ++c) {
      const Moments mom = channel_moments(s, f.x, c);
      normalize_channel(s, f, c, mom.mean,
                        record_statistics(s, c, mom, momentum, eps, running_mean, running_var, save_mean, save_invstd));
    }
  });
}

template <class T>
void batch_norm_eval_forward(const BatchNormShape& s, const BatchNormForward<T>& f, double eps,
                             const T* running_mean, const T* running_var) {
  parallel_for_dynamic(0, s.C, [&](index_t lo, index_t hi) {
    for (index_t c = lo; c < hi; ++c)
      normalize_channel(s, f, c, running_mean[c], 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  });
}

template <class T>
void batch_norm_backward(const BatchNormShape& s, const BatchNormBackward<T>& b) {
  parallel_for_dynamic(0, s.C, [&](index_t lo, index_t hi) {
    T* scratch = b.y && !b.grad_residual ? thread_scratch<T>(s.N * s.HW, ScratchSlot::masked_grad) : nullptr;
    for (index_t c = lo; c < hi; ++c) channel_backward(s, b, c, scratch);
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                              \
  template void batch_norm_train_forward<T>(const BatchNormShape&, const BatchNormForward<T>&, double, double, \
                                            T*, T*, T*, T*);                                                  \
  template void batch_norm_eval_forward<T>(const BatchNormShape&, const BatchNormForward<T>&, double,        \
                                           const T*, const T*);                                               \
  template void batch_norm_backward<T>(const BatchNormShape&, const BatchNormBackward<T>&);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::norm::cpu
