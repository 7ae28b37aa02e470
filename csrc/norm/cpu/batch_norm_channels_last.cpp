// Fused batch norm over channels_last memory: N*H*W pixels of C adjacent channels. Every pass
// runs over pixels with the channel loop innermost (contiguous, so it vectorises against
// per-channel vectors of mean, scale and shift), and threads split the pixels, not the channels.
// The per-channel sums are formed per chunk of pixels and the chunks added in a fixed order, so
// the results do not depend on the thread count. The formulas are the NCHW kernels'
// (batch_norm.h's shared arithmetic); only the order of the sums differs.
#include <algorithm>
#include <vector>

#include "core/parallel.h"
#include "core/stream_store.h"
#include "norm/cpu/batch_norm.h"
#include "norm/cpu/batch_norm_loops.h"

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

// Writes every pixel's C outputs: fill(out, p0, p1) computes pixels [p0, p1) into out. A thread
// takes a range of pixels; streamed (core/stream_store.h), they go through an L1 buffer first.
template <class T, class Fill>
void write_pixels(const BatchNormShape& s, T* dst, const Fill& fill) {
  const index_t C = s.C;
  if (s.count() == 0 || C == 0) return;
  const bool stream = stream_output(static_cast<std::size_t>(s.count() * C) * sizeof(T));
  const index_t per_block = std::max<index_t>(1, 2048 / static_cast<index_t>(C * sizeof(T)));
  parallel_for(0, s.count(), std::max<index_t>(1, 4096 / C), [&](index_t lo, index_t hi) {
    if (!stream) return fill(dst + lo * C, lo, hi);
    std::vector<T> block(static_cast<std::size_t>(per_block * C));
    for (index_t p0 = lo; p0 < hi; p0 += per_block) {
      const index_t p1 = std::min(hi, p0 + per_block);
      fill(block.data(), p0, p1);
      stream_copy(dst + p0 * C, block.data(), (p1 - p0) * C);
    }
    stream_fence();
  });
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

template <class T>
void normalize(const BatchNormShape& s, const BatchNormForward<T>& f, const ChannelAffine<T>& a) {
  const index_t C = s.C;
  const auto normalize_pixels = batch_norm_loops<T>().normalize_cl[f.relu][f.residual != nullptr];
  write_pixels(s, f.y, [&](T* y, index_t p0, index_t p1) {
    normalize_pixels(f.x + p0 * C, f.residual ? f.residual + p0 * C : nullptr, p1 - p0, C, a.mean.data(),
                     a.scale.data(), a.beta.data(), y);
  });
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
  const auto moments = batch_norm_loops<T>().moments_cl;
  const std::vector<double> sums = channel_sums<T, 2>(s, [&](index_t p0, index_t p1, T* runs) {
    moments(f.x + p0 * C, p1 - p0, C, shifts.data(), runs, runs + C);
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
  const BatchNormLoops<T>& loops = batch_norm_loops<T>();
  // With a ReLU and a residual, grad_residual is the masked gradient: the first pass writes it,
  // and the second reads it instead of grad_y and y.
  const bool relu = b.y != nullptr, masked_to_residual = relu && b.grad_residual;
  const auto grad_sums = loops.grad_sums_cl[relu][masked_to_residual];
  const std::vector<double> sums = channel_sums<T, 2>(s, [&](index_t p0, index_t p1, T* runs) {
    grad_sums(b.grad_y + p0 * C, relu ? b.y + p0 * C : nullptr, b.x + p0 * C, p1 - p0, C, b.mean,
              masked_to_residual ? b.grad_residual + p0 * C : nullptr, runs, runs + C);
  });
  std::vector<T> coefficients(3 * C);  // k, k_xmu, k_0 of each channel
  T *k = coefficients.data(), *k_xmu = k + C, *k_0 = k + 2 * C;
  for (index_t c = 0; c < C; ++c) {
    const GradCoefficients kc = channel_grad_coefficients(s, b, c, sums[c], sums[C + c]);
    k[c] = T(kc.k), k_xmu[c] = T(kc.k_xmu), k_0[c] = T(kc.k_0);
  }
  const T* g = masked_to_residual ? b.grad_residual : b.grad_y;
  const bool mask = relu && !masked_to_residual, copy_residual = b.grad_residual && !masked_to_residual;
  const auto grad_input = loops.grad_input_cl[mask][copy_residual];
  write_pixels(s, b.grad_x, [&](T* dx, index_t p0, index_t p1) {
    grad_input(g + p0 * C, mask ? b.y + p0 * C : nullptr, b.x + p0 * C, p1 - p0, C, b.mean, k, k_xmu, k_0, dx,
               copy_residual ? b.grad_residual + p0 * C : nullptr);
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
