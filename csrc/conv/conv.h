// conv2d as torch.nn.functional.conv2d (cross-correlation, NCHW, groups): its geometry, the
// algorithms that run it, and the checked entry points. Each entry point checks its arguments
// (shapes, dtypes, that the algorithm can run the shape) before any kernel touches memory, then
// runs the algorithm's kernel for the arrays' dtype (cpu/kernels.h).
#pragma once
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "common/conv_geometry.h"
#include "core/tensor_arg.h"

namespace fastconv::conv {

// Arguments after Python has normalised them (padding may be asymmetric: 'same' with an even
// kernel puts the extra row/column at the end, as PyTorch does).
struct Conv2dParams {
  std::array<index_t, 2> stride{1, 1};
  std::array<index_t, 2> pad_begin{0, 0};  // top, left
  std::array<index_t, 2> pad_end{0, 0};    // bottom, right; negative crops the input's end
  std::array<index_t, 2> dilation{1, 1};
  index_t groups = 1;
};

// Every size of one convolution, checked for consistency on construction.
struct Conv2dShape {
  index_t N, C, H, W;  // input
  index_t K, R, S;     // weight: K x (C / groups) x R x S
  index_t P, Q;        // output
  Conv2dParams p;

  // input (N, C, H, W), weight (K, C/groups, R, S); throws ValueError naming the problem.
  Conv2dShape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
              const Conv2dParams& params);

  index_t groups() const { return p.groups; }
  index_t C_per_group() const { return C / p.groups; }
  index_t K_per_group() const { return K / p.groups; }
  index_t column_rows() const { return C * R * S; }  // rows of the im2col matrix
  index_t pixels() const { return P * Q; }
  std::array<index_t, 4> output_shape() const { return {N, K, P, Q}; }
  std::array<index_t, 4> input_shape() const { return {N, C, H, W}; }
  std::array<index_t, 4> weight_shape() const { return {K, C / p.groups, R, S}; }
  // A 1x1, stride-1, unpadded convolution reads its input as the column matrix itself.
  bool is_pointwise() const;
  bool is_strided() const { return p.stride[0] > 1 || p.stride[1] > 1; }
  // The filters of each stride phase, ceil(R / stride) x ceil(S / stride): the kernel a strided
  // convolution's phases convolve with at stride 1 (cpu/tiled_conv.h); R x S at stride 1.
  std::array<index_t, 2> phase_kernel() const {
    return {phase_kernel_size(R, p.stride[0]), phase_kernel_size(S, p.stride[1])};
  }
};

// The algorithms behind conv2d. Each lives in its own file of cpu/ and provides the three
// kernels of cpu/kernels.h with an `_<algo>` suffix.
enum class Algo { im2col, implicit_gemm, direct, depthwise, winograd_2x3, winograd_4x3, winograd_2x5, winograd_4x5,
                  winograd_2x7, winograd_4x2, fft };

Algo parse_algo(const std::string& name);  // ValueError naming the choices
const char* algo_name(Algo algo);
std::vector<std::string> algorithm_names();
// Why `algo` cannot run shape `s` (e.g. "needs a 3x3 kernel"), or nullptr when it can.
const char* unsupported_reason(Algo algo, const Conv2dShape& s);
// ValueError naming the algorithm and the reason when it cannot run shape `s`.
void check_supported(Algo algo, const Conv2dShape& s);
// The algorithm whose kernel computes `algo`'s input / weight gradient of shape s: `algo` itself
// when it has one of its own, else im2col (conv2d_backward_input / _weight dispatch by it).
Algo input_gradient_kernel(Algo algo, const Conv2dShape& s);
Algo weight_gradient_kernel(Algo algo, const Conv2dShape& s);
// Whether `algo`'s transformed weight for s depends on the weight and groups alone, so that a
// cache keyed on them (ops/conv_weight_cache.py) may reuse it: not a strided Winograd's, made
// from the stride's phase filters (and cheap beside its convolution: 0.1 ms of AlexNet's conv1).
bool weight_transform_reusable(Algo algo, const Conv2dShape& s);

// Transformed weights: an algorithm that maps each filter to another domain before convolving
// (Winograd's U = G g G^T) can do it once per weight and reuse it across calls. `use` says which
// filters: the forward convolution's, or its input gradient's (rotated, channel-transposed).
enum class WeightUse { forward, input_gradient };
WeightUse parse_weight_use(const std::string& name);  // "forward" or "input_gradient"
// FFT transforms its filters at the tile size a shape runs (weight_transform_tile: a power of
// two, chosen per input size); `tile` 0 below means that size for shape s. Winograd's
// transform depends on the weight alone, and its tile is 0.
constexpr index_t kFftMaxKernel = 63;  // FFT tiles are at most 64 x 64
index_t weight_transform_tile(Algo algo, const Conv2dShape& s, WeightUse use);
// Values in `algo`'s transformed weight for shape s; 0 when the algorithm has none.
index_t transformed_weight_size(Algo algo, const Conv2dShape& s, WeightUse use, index_t tile = 0);

// ---- the entry points of fastconv._C, by the names Python gives them ----

// (N, K, P, Q) of input (N, C, H, W) and weight (K, C/groups, R, S).
std::array<index_t, 4> conv2d_output_shape(const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                           const Conv2dParams& params);
// unsupported_reason by name: nullptr when `algo` can run the shape.
const char* conv2d_unsupported_reason(const std::string& algo, const std::array<index_t, 4>& input,
                                      const std::array<index_t, 4>& weight, const Conv2dParams& params);
// The name of the algorithm whose kernel runs `algo`'s gradient ("input" or "weight").
const char* conv2d_gradient_kernel(const std::string& algo, const std::string& direction,
                                   const std::array<index_t, 4>& input, const std::array<index_t, 4>& weight,
                                   const Conv2dParams& params);
// The tile size a call's weight transform is made at (FFT; 0 for Winograd, whose transform
// depends on the weight alone): part of a cached transform's key (ops/conv_weight_cache.py).
// Nothing where the call's transform cannot be reused so (a strided Winograd's).
std::optional<index_t> conv2d_weight_transform_tile(const std::string& algo, const std::array<index_t, 4>& input,
                                                    const std::array<index_t, 4>& weight, const Conv2dParams& params,
                                                    const std::string& use);
// The size of the transform of a weight (K, C/groups, R, S) for reuse: 0 when `algo` has none.
// Only K, C/groups, R, S and groups matter, so no input shape is asked for. `tile`: FFT's tile
// size (a power of two from the kernel's size to 64), 0 for the others.
index_t conv2d_transformed_weight_size(const std::string& algo, const std::array<index_t, 4>& weight, index_t groups,
                                       const std::string& use, index_t tile);
// out (conv2d_transformed_weight_size values) = `algo`'s transform of weight for `use`.
void conv2d_transform_weight(const TensorArg& weight, const TensorArg& out, index_t groups, const std::string& algo,
                             const std::string& use, index_t tile);

// out = conv2d(input, weight) + bias + residual (absent: none), then ReLU if `relu`.
// `transformed`: the weight already transformed for (algo, "forward"), or absent (then the call
// transforms it). `residual`: out's shape and layout, in memory of its own (a GEMM whose depth
// runs in slices writes out before the last slice adds the residual). `pixel_shuffle` f > 1
// (Winograd, NCHW, no residual): out is pixel_shuffle(that, f), (N, K / f^2, P f, Q f), written
// directly (conv_transpose2d's pixel_shuffle algorithm).
void conv2d_forward(const TensorArg& input, const TensorArg& weight, const TensorArg& bias, const TensorArg& out,
                    const Conv2dParams& params, const std::string& algo, bool relu, const TensorArg& transformed,
                    const TensorArg& residual, index_t pixel_shuffle = 1);
// grad_input of conv2d, overwritten. `transformed`: as for conv2d_forward, for "input_gradient".
// `pixel_shuffle` f > 1 (Winograd, stride 1, NCHW): grad_output is the gradient of the output
// pixel-shuffled by f, (N, K / f^2, P f, Q f), read as its unshuffle with no copy made.
void conv2d_backward_input(const TensorArg& grad_output, const TensorArg& weight, const TensorArg& grad_input,
                           const Conv2dParams& params, const std::string& algo, const TensorArg& transformed,
                           index_t pixel_shuffle = 1);
// grad_weight (and grad_bias when given) of conv2d, overwritten.
void conv2d_backward_weight(const TensorArg& input, const TensorArg& grad_output, const TensorArg& grad_weight,
                            const TensorArg& grad_bias, const Conv2dParams& params, const std::string& algo);
// Both: grad_input and grad_weight (and grad_bias when given) by `algo`'s gradient kernels,
// overwritten; in one pass over grad_output where the algorithm has one (depthwise).
void conv2d_backward(const TensorArg& input, const TensorArg& weight, const TensorArg& grad_output,
                     const TensorArg& grad_input, const TensorArg& grad_weight, const TensorArg& grad_bias,
                     const Conv2dParams& params, const std::string& algo);

// Whether two C-contiguous arrays hold the same bytes: how the transformed-weight cache
// (ops/conv_weight_cache.py) checks that a weight is unchanged since it was transformed.
bool same_bytes(const TensorArg& a, const TensorArg& b);

// One 2-D transform of Winograd F(M x M, 3 x 3) on a batch of tiles, for tests: `which` is
// "filter" (3x3 -> alpha^2, G g G^T), "input" (alpha^2 -> alpha^2, B^T d B) or "output"
// (alpha^2 -> M^2, A^T m A); tile M is 2 or 4. The shape of the result for `tiles`
// (count, n, n), checked:
std::array<index_t, 3> winograd_codelet_shape(const std::string& which, int tile, const TensorArg& tiles);
// out (winograd_codelet_shape) = the transform of tiles.
void winograd_codelet(const std::string& which, int tile, const TensorArg& tiles, const TensorArg& out);

}  // namespace fastconv::conv
