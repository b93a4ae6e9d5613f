// The CI scale run of `resilink sim`: zero violations over many simulated
// client-hours and at least RESILINK_SIM_MIN_OUTAGES outages. Prints the
// figures. (A timing goal is not asserted: the wall time is printed.)
#include <gtest/gtest.h>

#include <cstdio>
#include <regex>
#include <string>

TEST(SimScale, ZeroViolationsOverManyOutages) {
  std::string command = std::string(RESILINK_BINARY) + " sim --client-hours " +
                        std::to_string(RESILINK_SIM_CLIENT_HOURS) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  std::printf("%s", out.c_str());
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(\nviolations=(\d+))")));
  EXPECT_EQ(m[1], "0");
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(outages=(\d+))")));
  EXPECT_GE(std::stoull(m[1]), static_cast<unsigned long long>(RESILINK_SIM_MIN_OUTAGES));
  ASSERT_TRUE(std::regex_search(out, m, std::regex(R"(client-hours=([\d.]+))")));
  EXPECT_GE(std::stod(m[1]), RESILINK_SIM_CLIENT_HOURS);
  EXPECT_EQ(status, 0);
}
