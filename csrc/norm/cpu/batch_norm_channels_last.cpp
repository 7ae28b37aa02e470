// Fused batch norm over channels_last memory: N*H*W pixels of C adjacent channels. Every pass
// runs over pixels with the channel loop innermost (contiguous, so it vectorises against
// per-channel vectors of mean, scale and shift), and threads split the pixels, not the channels.
// The per-channel sums are formed per chunk of pixels and the chunks added in a fixed order, so
// the results do not depend on the thread count. The formulas are the NCHW kernels'
// (batch_norm.h's shared arithmetic); only the order of the sums differs.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "core/stream_store.h"
#include "norm/cpu/batch_norm.h"

namespace fastconv::norm::cpu {

namespace {

constexpr index_t kRun = 16;      // pixels summed in T's precision before a run goes into double
constexpr index_t kChunk = 1024;  // pixels per task of a reduction

// Sums kTerms per-channel quantities over every pixel; returns kTerms blocks of C sums.
// add_run(p0, p1, runs) adds pixels [p0, p1)'s terms into runs (kTerms blocks of C values of T,
// zeroed first): in T a vector lane adds kRun values, as the NCHW kernels' lanes add a few dozen,
// and converting every float to double would make the pass compute-bound.
template <class T, int kTerms, class AddRun>
std::vector<double> channel_sums(const BatchNormShape& s, const AddRun& add_run) {
  const index_t width = kTerms * s.C, pixels = s.count(), chunks = (pixels + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<std::size_t>(chunks * width), 0.0);
  parallel_for(0, chunks, 1, [&](index_t lo, index_t hi) {
    std::vector<T> runs(static_cast<std::size_t>(width));
    for (index_t chunk = lo; chunk < hi; ++chunk) {
      double* sums = partial.data() + chunk * width;
      const index_t end = std::min(pixels, (chunk + 1) * kChunk);
      for (index_t p0 = chunk * kChunk; p0 < end; p0 += kRun) {
        std::fill(runs.begin(), runs.end(), T(0));
        add_run(p0, std::min(end, p0 + kRun), runs.data());
        for (index_t i = 0; i < width; ++i) sums[i] += runs[i];
      }
    }
  });
  std::vector<double> total(static_cast<std::size_t>(width), 0.0);
  for (index_t chunk = 0; chunk < chunks; ++chunk)
    for (index_t i = 0; i < width; ++i) total[i] += partial[chunk * width + i];
  return total;
}

// Writes every pixel's C outputs: fill(out, p) computes pixel p's into out. A thread takes a
// range of pixels; streamed (core/stream_store.h), the pixels go through an L1 buffer first.
template <class T, class Fill>
void write_pixels(const BatchNormShape& s, T* dst, const Fill& fill) {
  const index_t C = s.C;
  if (s.count() == 0 || C == 0) return;
  const bool stream = stream_output(static_cast<std::size_t>(s.count() * C) * sizeof(T));
  const index_t per_block = std::max<index_t>(1, 2048 / static_cast<index_t>(C * sizeof(T)));
  parallel_for(0, s.count(), std::max<index_t>(1, 4096 / C), [&](index_t lo, index_t hi) {
    if (!stream) {
      for (index_t p = lo; p < hi; ++p) fill(dst + p * C, p);
      return;
    }
    std::vector<T> block(static_cast<std::size_t>(per_block * C));
    for (index_t p0 = lo; p0 < hi; p0 += per_block) {
      const index_t p1 = std::min(hi, p0 + per_block);
      for (index_t p = p0; p < p1; ++p) fill(block.data() + (p - p0) * C, p);
      stream_copy(dst + p0 * C, block.data(), (p1 - p0) * C);
    }
    stream_fence();
  });
}

// fn(relu, residual) with both as compile-time constants, so inner loops are branch-free.
template <class Fn>
void with_fusions(bool relu, bool residual, const Fn& fn) {
  using Yes = std::true_type;
  using No = std::false_type;
  if (relu) residual ? fn(Yes{}, Yes{}) : fn(Yes{}, No{});
  else residual ? fn(No{}, Yes{}) : fn(No{}, No{});
}

// Per-channel vectors for the normalising pass: y = relu((x - mean) * scale + beta + z).
template <class T>
struct ChannelAffine {
  std::vector<T> mean, scale, beta;
  explicit ChannelAffine(index_t C) : mean(C), scale(C), beta(C) {}
  void set(const BatchNormForward<T>& f, index_t c, double m, double invstd) {
    mean[c] = static_cast<T>(m);
    scale[c] = static_cast<T>(invstd * (f.gamma ? f.gamma[c] : T(1)));
    beta[c] = f.beta ? f.beta[c] : T(0);
  }
};

// NaN passes the ReLU, as torch.relu's does.
template <class T>
void normalize(const BatchNormShape& s, const BatchNormForward<T>& f, const ChannelAffine<T>& a) {
  const index_t C = s.C;
  const T *mean = a.mean.data(), *scale = a.scale.data(), *beta = a.beta.data();
  with_fusions(f.relu, f.residual != nullptr, [&](auto relu, auto residual) {
    write_pixels(s, f.y, [&](T* __restrict y, index_t p) {
      const T* __restrict x = f.x + p * C;
      const T* __restrict z = f.residual + (residual ? p * C : 0);
#pragma omp simd
      for (index_t c = 0; c < C; ++c) {
        T v = (x[c] - mean[c]) * scale[c] + beta[c];
        if constexpr (residual()) v += z[c];
        if constexpr (relu()) v = v < T(0) ? T(0) : v;
        y[c] = v;
      }
    });
  });
}

// The gradient reaching bn(x): grad_y where the ReLU passed it (PyTorch's threshold_backward
// zeroes it where the output is <= 0), grad_y itself without a ReLU. Both loads come before the
// select: a load under the condition made GCC branch (on a random mask), not vectorise.
template <bool kRelu, class T>
inline T masked_grad(const BatchNormBackward<T>& b, index_t at) {
  const T dy = b.grad_y[at];
  if constexpr (kRelu) {
    const T out = b.y[at];
    return out <= T(0) ? T(0) : dy;
  }
  return dy;
}

}  // namespace

template <class T>
void batch_norm_train_forward_channels_last(const BatchNormShape& s, const BatchNormForward<T>& f, double momentum,
                                            double eps, T* running_mean, T* running_var, T* save_mean,
                                            T* save_invstd) {
  if (!has_batch_statistics(s, save_mean, save_invstd)) return;
  const index_t C = s.C;
  std::vector<T> shifts(C);
  for (index_t c = 0; c < C; ++c) shifts[c] = moment_shift(f.x[c]);  // pixel 0, as NCHW's first value
  const T* __restrict shift = shifts.data();
  const std::vector<double> sums = channel_sums<T, 2>(s, [&](index_t p0, index_t p1, T* runs) {
    T* __restrict sum = runs;
    T* __restrict sum_sq = runs + C;
    for (index_t p = p0; p < p1; ++p) {
      const T* __restrict x = f.x + p * C;
#pragma omp simd
      for (index_t c = 0; c < C; ++c) {
        const T d = x[c] - shift[c];
        sum[c] += d;
        sum_sq[c] += d * d;
      }
    }
  });
  ChannelAffine<T> affine(C);
  for (index_t c = 0; c < C; ++c) {
    const Moments mom = shifted_moments(shifts[c], sums[c], sums[C + c], static_cast<double>(s.count()));
    affine.set(f, c, mom.mean,
               record_statistics(s, c, mom, momentum, eps, running_mean, running_var, save_mean, save_invstd));
  }
  normalize(s, f, affine);
}

template <class T>
void batch_norm_eval_forward_channels_last(const BatchNormShape& s, const BatchNormForward<T>& f, double eps,
                                           const T* running_mean, const T* running_var) {
  ChannelAffine<T> affine(s.C);
  for (index_t c = 0; c < s.C; ++c)
    affine.set(f, c, running_mean[c], 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps));
  normalize(s, f, affine);
}

template <class T>
void batch_norm_backward_channels_last(const BatchNormShape& s, const BatchNormBackward<T>& b) {
  const index_t C = s.C;
  with_fusions(b.y != nullptr, b.grad_residual != nullptr, [&](auto relu, auto residual) {
    const std::vector<double> sums = channel_sums<T, 2>(s, [&](index_t p0, index_t p1, T* runs) {
      T* __restrict sum = runs;
      T* __restrict sum_xmu = runs + C;
      for (index_t p = p0; p < p1; ++p) {
        const T* __restrict x = b.x + p * C;
#pragma omp simd
        for (index_t c = 0; c < C; ++c) {
          const T g = masked_grad<relu()>(b, p * C + c);
          sum[c] += g;
          sum_xmu[c] += g * (x[c] - b.mean[c]);
        }
      }
    });
    std::vector<T> coefficients(3 * C);  // k, k_xmu, k_0 of each channel
    T *k = coefficients.data(), *k_xmu = k + C, *k_0 = k + 2 * C;
    for (index_t c = 0; c < C; ++c) {
      const GradCoefficients kc = channel_grad_coefficients(s, b, c, sums[c], sums[C + c]);
      k[c] = T(kc.k), k_xmu[c] = T(kc.k_xmu), k_0[c] = T(kc.k_0);
    }
    write_pixels(s, b.grad_x, [&](T* __restrict dx, index_t p) {
      const T* __restrict x = b.x + p * C;
      T* __restrict dz = b.grad_residual + (residual ? p * C : 0);
#pragma omp simd
      for (index_t c = 0; c < C; ++c) {
        const T g = masked_grad<relu()>(b, p * C + c);
        if constexpr (residual()) dz[c] = g;
        dx[c] = k[c] * g + (x[c] - b.mean[c]) * k_xmu[c] + k_0[c];
      }
    });
  });
}

#define FASTCONV_INSTANTIATE(T)                                                                                  \
  template void batch_norm_train_forward_channels_last<T>(const BatchNormShape&, const BatchNormForward<T>&,     \
                                                          double, double, T*, T*, T*, T*);                       \
  template void batch_norm_eval_forward_channels_last<T>(const BatchNormShape&, const BatchNormForward<T>&,      \
                                                         double, const T*, const T*);                            \
  template void batch_norm_backward_channels_last<T>(const BatchNormShape&, const BatchNormBackward<T>&);
FASTCONV_INSTANTIATE(float)
FASTCONV_INSTANTIATE(double)
#undef FASTCONV_INSTANTIATE

}  // namespace fastconv::norm::cpu
