#include "resilink/lab/distribution.h"

#include <algorithm>
#include <cmath>

namespace resilink::lab {

void Distribution::sort() const {
  if (sorted_) return;
  std::sort(values_.begin(), values_.end());
  sorted_ = true;
}

double Distribution::percentile(double p) const {
  if (values_.empty()) return 0;
  sort();
  p = std::clamp(p, 0.0, 100.0);
  // Nearest rank: the smallest value with at least p% of values at or below it.
  size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values_.size())));
  return values_[rank == 0 ? 0 : rank - 1];
}

double Distribution::fraction_at_most(double limit) const {
  if (values_.empty()) return 1;
  sort();
  auto it = std::upper_bound(values_.begin(), values_.end(), limit);
  return static_cast<double>(it - values_.begin()) / static_cast<double>(values_.size());
}

}  // namespace resilink::lab
