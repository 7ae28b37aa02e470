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
  double sum = 0, sum_sq = 0;
  for_each_run<T>(s, c, {x}, [&](index_t, index_t, index_t len, index_t at) {
    const T* values = x + at;
    T run = 0, run_sq = 0;
#pragma omp simd reduction(+ : run, run_sq)
    for (index_t i = 0; i < len; ++i) {
      const T d = values[i] - shift;
      run += d;
      run_sq += d * d;
    }
    sum += run;
    sum_sq += run_sq;
  });
  return shifted_moments(shift, sum, sum_sq, static_cast<double>(s.count()));
}

// y = relu((x - mean) * scale + beta + z) over one channel; relu and z chosen at compile time
// so the inner loop is branch-free. NaN passes the ReLU, as torch.relu's does.
template <class T, bool kRelu, bool kResidual>
void normalize_channel(const BatchNormShape& s, const BatchNormForward<T>& f, index_t c, T mean, T scale, T beta) {
  const bool stream = streamed<T>(s);
  for (index_t n = 0; n < s.N; ++n) {
    const index_t offset = (n * s.C + c) * s.HW;
    write_blocks(f.y + offset, s.HW, stream, [&](T* y, index_t i0, index_t len) {
      const T* x = f.x + offset + i0;
      const T* z = f.residual + (kResidual ? offset + i0 : 0);
#pragma omp simd
      for (index_t i = 0; i < len; ++i) {
        T v = (x[i] - mean) * scale + beta;
        if constexpr (kResidual) v += z[i];
        if constexpr (kRelu) v = v < T(0) ? T(0) : v;
        y[i] = v;
      }
    });
  }
  if (stream) stream_fence();
}

template <class T>
void normalize_channel(const BatchNormShape& s, const BatchNormForward<T>& f, index_t c, double mean,
                       double invstd) {
  const T scale = static_cast<T>(invstd * (f.gamma ? f.gamma[c] : T(1)));
  const T beta = f.beta ? f.beta[c] : T(0), m = static_cast<T>(mean);
  if (f.relu) {
    if (f.residual) normalize_channel<T, true, true>(s, f, c, m, scale, beta);
    else normalize_channel<T, true, false>(s, f, c, m, scale, beta);
  } else {
    if (f.residual) normalize_channel<T, false, true>(s, f, c, m, scale, beta);
    else normalize_channel<T, false, false>(s, f, c, m, scale, beta);
  }
}

// With a ReLU, the gradient reaching bn(x) is grad_y where the ReLU passed it (PyTorch's
// threshold_backward zeroes it where the output is <= 0). It is written into a per-thread buffer
// of the channel's N*HW values first, a run at a time, so that every loop below handles one type
// and vectorises (a select mixed into the double reduction compiled to a branch, and the mask
// is random). Not into grad_x: the streamed stores of grad_x would then first write those
// cached lines back, 16 MiB more traffic at 64x64x32x32.
template <class T>
const T* masked_grad_plane(const T* grad_y, const T* y, index_t n, T* g) {
#pragma omp simd
  for (index_t i = 0; i < n; ++i) {
    const T out = y[i], dy = grad_y[i];
    g[i] = out <= T(0) ? T(0) : dy;
  }
  return g;
}

struct GradSums {
  double grad, grad_xmu;  // sum of g and of g * (x - mean)
};

template <class T>
GradSums channel_grad_sums(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, T* masked) {
  const T mean = b.mean[c];
  double sum = 0, sum_xmu = 0;
  for_each_run<T>(s, c, {b.x, b.grad_y, b.y}, [&](index_t n, index_t i0, index_t len, index_t at) {
    const T* x = b.x + at;
    const T* g = b.y ? masked_grad_plane(b.grad_y + at, b.y + at, len, masked + n * s.HW + i0) : b.grad_y + at;
    T run = 0, run_xmu = 0;  // in T's lanes, as channel_moments: in double this pass took 2x the others
#pragma omp simd reduction(+ : run, run_xmu)
    for (index_t i = 0; i < len; ++i) {
      run += g[i];
      run_xmu += g[i] * (x[i] - mean);
    }
    sum += run;
    sum_xmu += run_xmu;
  });
  return {sum, sum_xmu};
}

// grad_x = k * g + (x - mean) * k_xmu + k_0, and grad_residual = g; g is the masked gradient
// channel_grad_sums left in `masked`, or grad_y without a ReLU.
template <class T, bool kResidual>
void channel_grad_input(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, T k, T k_xmu, T k_0,
                        const T* masked) {
  const T mean = b.mean[c];
  const bool stream = streamed<T>(s);
  for (index_t n = 0; n < s.N; ++n) {
    const index_t offset = (n * s.C + c) * s.HW;
    write_blocks(b.grad_x + offset, s.HW, stream, [&](T* dx, index_t i0, index_t len) {
      const T* x = b.x + offset + i0;
      const T* g = b.y ? masked + n * s.HW + i0 : b.grad_y + offset + i0;
      T* dz = b.grad_residual + (kResidual ? offset + i0 : 0);
#pragma omp simd
      for (index_t i = 0; i < len; ++i) {
        const T gi = g[i];
        if constexpr (kResidual) dz[i] = gi;
        dx[i] = k * gi + (x[i] - mean) * k_xmu + k_0;
      }
    });
  }
  if (stream) stream_fence();
}

template <class T>
void channel_backward(const BatchNormShape& s, const BatchNormBackward<T>& b, index_t c, T* masked) {
  const GradSums sums = channel_grad_sums(s, b, c, masked);
  const GradCoefficients k = channel_grad_coefficients(s, b, c, sums.grad, sums.grad_xmu);
  if (b.grad_residual) channel_grad_input<T, true>(s, b, c, T(k.k), T(k.k_xmu), T(k.k_0), masked);
  else channel_grad_input<T, false>(s, b, c, T(k.k), T(k.k_xmu), T(k.k_0), masked);
}

}  // namespace

template <class T>
void batch_norm_train_forward(const BatchNormShape& s, const BatchNormForward<T>& f, double momentum,
                              double eps, T* running_mean, T* running_var, T* save_mean, T* save_invstd) {
  if (!has_batch_statistics(s, save_mean, save_invstd)) return;
  parallel_for(0, s.C, 1, [&](index_t lo, index_t hi) {
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
  parallel_for(0, s.C, 1, [&](index_t lo, index_t hi) {
    for (index_t c = lo; c < hi; ++c)
      normalize_channel(s, f, c, running_mean[c], 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  });
}

template <class T>
void batch_norm_backward(const BatchNormShape& s, const BatchNormBackward<T>& b) {
  parallel_for(0, s.C, 1, [&](index_t lo, index_t hi) {
    T* masked = b.y ? thread_scratch<T>(s.N * s.HW, ScratchSlot::masked_grad) : nullptr;
    for (index_t c = lo; c < hi; ++c) channel_backward(s, b, c, masked);
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
