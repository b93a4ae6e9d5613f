// The figures `resilink bench` prints and writes. Every section adds figures
// to one Report; each figure can carry the baseline measured in the same run
// (the ratio is value / baseline) and the target this machine must meet.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace resilink::bench {

// How a figure is judged against its target.
enum class Goal { none, at_most, at_least };

struct Figure {
  std::string section;   // "rtt", "throughput", "scale", "core"
  std::string name;      // e.g. "qos round trip p50, 32 B"
  double value = 0;
  std::string unit;      // "us", "msg/s", "B/conn", "%", ...
  // The baseline measured in the same run, e.g. raw TCP ping-pong p50.
  std::optional<double> baseline;
  std::string baseline_name;
  // The target for this machine, e.g. at_most 2.0 for a ratio.
  Goal goal = Goal::none;
  double target = 0;
  bool target_on_ratio = false;  // the target applies to value/baseline
  std::string note;              // one line of context, may be empty

  std::optional<double> ratio() const {
    if (!baseline || *baseline == 0) return std::nullopt;
    return value / *baseline;
  }
  // True when there is no target or the target is met.
  bool met() const;
};

class Report {
 public:
  void add(Figure figure) { figures_.push_back(std::move(figure)); }
  const std::vector<Figure>& figures() const { return figures_; }
  // Free-form facts about the run (machine, options, generator CPU, ...).
  void set(const std::string& key, nlohmann::json value) { context_[key] = std::move(value); }
  const nlohmann::json& context() const { return context_; }

  // A fixed-width table, one row per figure, grouped by section.
  void print_table(std::ostream& out) const;
  // {"context": {...}, "figures": [{section, name, value, unit, baseline,
  //  baseline_name, ratio, goal, target, target_on_ratio, met, note}, ...]}
  nlohmann::json to_json() const;
  // Figures with a target that is not met.
  size_t missed_targets() const;

 private:
  std::vector<Figure> figures_;
  nlohmann::json context_ = nlohmann::json::object();
};

}  // namespace resilink::bench
