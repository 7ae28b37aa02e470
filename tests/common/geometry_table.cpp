// Answers geometry questions with the headers of csrc/common, one per input line, so that
// test_common_headers.py can hold them against what fastconv._C computes and against brute force:
//   conv IN KERNEL STRIDE PAD_BEGIN PAD_END DILATION            -> output size, or "error"
//   conv_transpose IN KERNEL STRIDE PADDING OUTPUT_PADDING DILATION -> output size, or "error"
//   pool IN KERNEL STRIDE PADDING DILATION CEIL_MODE             -> output size, or "error"
//   range OFFSET STRIDE LIMIT COUNT                             -> lo hi
#include <iostream>
#include <string>

#include "common/conv_geometry.h"
#include "common/pool_geometry.h"

using fastconv::index_t;
namespace conv = fastconv::conv;
namespace pool = fastconv::pool;

int main() {
  std::string op;
  while (std::cin >> op) {
    if (op == "conv") {
      conv::ConvAxis a;
      std::cin >> a.input >> a.kernel >> a.stride >> a.pad_begin >> a.pad_end >> a.dilation;
      if (conv::conv_axis_error(a) == conv::ConvAxisError::none) std::cout << conv::conv_output_size(a) << "\n";
      else std::cout << "error\n";
    } else if (op == "conv_transpose") {
      conv::ConvTransposeAxis a;
      std::cin >> a.input >> a.kernel >> a.stride >> a.padding >> a.output_padding >> a.dilation;
      if (conv::conv_transpose_axis_error(a) == conv::ConvTransposeAxisError::none)
        std::cout << conv::conv_transpose_output_size(a) << "\n";
      else std::cout << "error\n";
    } else if (op == "pool") {
      pool::PoolAxis a;
      int ceil_mode;
      std::cin >> a.input >> a.kernel >> a.stride >> a.padding >> a.dilation >> ceil_mode;
      if (pool::pool_axis_error(a, ceil_mode) == pool::PoolAxisError::none)
        std::cout << pool::pool_output_size(a, ceil_mode) << "\n";
      else std::cout << "error\n";
    } else if (op == "range") {
      index_t offset, stride, limit, count;
      std::cin >> offset >> stride >> limit >> count;
      const conv::Range r = conv::valid_range(offset, stride, limit, count);
      std::cout << r.lo << " " << r.hi << "\n";
    } else {
      std::cerr << "unknown question " << op << "\n";
      return 1;
    }
  }
  return 0;
}
