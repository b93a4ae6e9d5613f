# `resilink bench`: the Report (table, JSON, targets) as a unit, and the rtt
# and throughput sections end to end with --quick: every figure is in the
# JSON, positive, with ratio = value / baseline. RUN_SERIAL: it measures.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(bench_test ${CMAKE_CURRENT_LIST_DIR}/bench_test.cpp)
target_include_directories(bench_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(bench_test PRIVATE resilink_bench GTest::gtest_main)
target_compile_definitions(bench_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(bench_test resilink)
gtest_discover_tests(bench_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
