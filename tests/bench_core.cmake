# `resilink bench --only core`: the Google Benchmark executable runs every
# benchmark briefly and passes its own checks (exit 0), and the section end to
# end with --quick reports every core figure. RUN_SERIAL: they measure.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_test(NAME core_bench_smoke
         COMMAND resilink_core_bench --benchmark_min_time=0.01 --benchmark_min_warmup_time=0)
set_tests_properties(core_bench_smoke PROPERTIES TIMEOUT 60 RUN_SERIAL TRUE)

add_executable(bench_core_test ${CMAKE_CURRENT_LIST_DIR}/bench_core_test.cpp)
target_include_directories(bench_core_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
# nlohmann-json reads the report (the bench library's dependency; Debian nlohmann-json3-dev).
find_package(nlohmann_json 3 REQUIRED)
target_link_libraries(bench_core_test PRIVATE nlohmann_json::nlohmann_json GTest::gtest_main)
target_compile_definitions(bench_core_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(bench_core_test resilink resilink_core_bench)
# One process for all its cases: they share one measured run (per-case
# discovery would start the bench once per case).
add_test(NAME bench_core_test COMMAND bench_core_test)
set_tests_properties(bench_core_test PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
