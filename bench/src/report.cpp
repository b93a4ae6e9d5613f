// The bench report: a fixed-width table for people, JSON for tools.
#include "resilink/bench/report.h"

#include <cmath>
#include <cstdio>
#include <string_view>

namespace resilink::bench {

namespace {

std::string_view goal_name(Goal goal) {
  switch (goal) {
    case Goal::none: return "none";
    case Goal::at_most: return "at_most";
    case Goal::at_least: return "at_least";
  }
  return "none";
}

// Enough digits to read a microsecond or a million messages at a glance.
std::string format_number(double value) {
  char buf[64];
  double magnitude = std::fabs(value);
  if (magnitude >= 1000 || magnitude == std::floor(magnitude))
    std::snprintf(buf, sizeof buf, "%.0f", value);
  else if (magnitude >= 10)
    std::snprintf(buf, sizeof buf, "%.1f", value);
  else
    std::snprintf(buf, sizeof buf, "%.2f", value);
  return buf;
}

std::string format_target(const Figure& f) {
  if (f.goal == Goal::none) return "";
  std::string target = f.goal == Goal::at_most ? "<= " : ">= ";
  target += format_number(f.target);
  target += f.target_on_ratio ? "x" : " " + f.unit;
  return target;
}

std::string pad(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

bool Figure::met() const {
  if (goal == Goal::none) return true;
  std::optional<double> judged = target_on_ratio ? ratio() : std::optional<double>(value);
  if (!judged) return false;  // a ratio target without a baseline cannot be met
  return goal == Goal::at_most ? *judged <= target : *judged >= target;
}

void Report::print_table(std::ostream& out) const {
  struct Row {
    std::string cells[7];
  };
  std::vector<Row> rows;
  rows.push_back({{"section", "figure", "value", "baseline", "ratio", "target", "met"}});
  for (const Figure& f : figures_) {
    Row row;
    row.cells[0] = f.section;
    row.cells[1] = f.name;
    row.cells[2] = format_number(f.value) + " " + f.unit;
    if (f.baseline) row.cells[3] = f.baseline_name + " " + format_number(*f.baseline) + " " + f.unit;
    if (auto r = f.ratio()) row.cells[4] = format_number(*r) + "x";
    row.cells[5] = format_target(f);
    row.cells[6] = f.goal == Goal::none ? "" : (f.met() ? "yes" : "no");
    rows.push_back(std::move(row));
  }
  size_t widths[7] = {};
  for (const Row& row : rows)
    for (size_t i = 0; i < 7; ++i) widths[i] = std::max(widths[i], row.cells[i].size());

  std::string previous_section;
  for (size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    // A blank line between sections keeps a long table readable.
    if (r > 1 && row.cells[0] != previous_section) out << '\n';
    previous_section = row.cells[0];
    std::string line;
    for (size_t i = 0; i < 7; ++i) {
      line += pad(row.cells[i], widths[i]);
      if (i + 1 < 7) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
    if (r == 0) out << std::string(line.size(), '-') << '\n';
  }
  // Notes under the table: they explain a figure without widening every row.
  bool any_note = false;
  for (const Figure& f : figures_) {
    if (f.note.empty()) continue;
    if (!any_note) out << '\n';
    any_note = true;
    out << "note: " << f.section << " / " << f.name << ": " << f.note << '\n';
  }
}

nlohmann::json Report::to_json() const {
  nlohmann::json figures = nlohmann::json::array();
  for (const Figure& f : figures_) {
    nlohmann::json j;
    j["section"] = f.section;
    j["name"] = f.name;
    j["value"] = f.value;
    j["unit"] = f.unit;
    j["baseline"] = f.baseline ? nlohmann::json(*f.baseline) : nlohmann::json(nullptr);
    j["baseline_name"] = f.baseline_name;
    auto r = f.ratio();
    j["ratio"] = r ? nlohmann::json(*r) : nlohmann::json(nullptr);
    j["goal"] = goal_name(f.goal);
    j["target"] = f.goal == Goal::none ? nlohmann::json(nullptr) : nlohmann::json(f.target);
    j["target_on_ratio"] = f.target_on_ratio;
    j["met"] = f.met();
    j["note"] = f.note;
    figures.push_back(std::move(j));
  }
  return {{"context", context_}, {"figures", std::move(figures)}};
}

size_t Report::missed_targets() const {
  size_t missed = 0;
  for (const Figure& f : figures_)
    if (!f.met()) ++missed;
  return missed;
}

}  // namespace resilink::bench
