// A distribution of measurements (milliseconds): count, p50, p99, max.
#pragma once

#include <cstddef>
#include <vector>

namespace resilink::lab {

class Distribution {
 public:
  void add(double value) {
    values_.push_back(value);
    sorted_ = false;
  }
  size_t count() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  // Nearest-rank percentile, p in [0, 100]; 0 when empty.
  double percentile(double p) const;
  double p50() const { return percentile(50); }
  double p99() const { return percentile(99); }
  double max() const { return percentile(100); }
  double min() const { return percentile(0); }
  // Values at most `limit`, as a fraction of all (1 when empty).
  double fraction_at_most(double limit) const;

 private:
  void sort() const;
  mutable std::vector<double> values_;
  mutable bool sorted_ = true;
};

}  // namespace resilink::lab
