# `resilink bench --only scale` end to end, small: 300 idle clients, short
# holds; the JSON holds the scale figures, no false outages, and the server
# saw every link up. RUN_SERIAL: it times keepalives in real time.
# nlohmann-json: reads the bench's JSON report (Debian nlohmann-json3-dev).
find_package(nlohmann_json 3 REQUIRED)
add_executable(bench_scale_test ${CMAKE_CURRENT_LIST_DIR}/bench_scale_test.cpp)
target_include_directories(bench_scale_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(bench_scale_test PRIVATE nlohmann_json::nlohmann_json GTest::gtest_main)
target_compile_definitions(bench_scale_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(bench_scale_test resilink)
gtest_discover_tests(bench_scale_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)

# The CPU figure's baseline, `resilink bench-server --app bare`, against raw
# loopback sockets: keepalives every timeout/4, silent links closed.
add_executable(bare_keepalive_server_test ${CMAKE_CURRENT_LIST_DIR}/bare_keepalive_server_test.cpp)
target_include_directories(bare_keepalive_server_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(bare_keepalive_server_test PRIVATE resilink_server GTest::gtest_main)  # RawClient (support/server_harness.h)
target_compile_definitions(bare_keepalive_server_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(bare_keepalive_server_test resilink)
gtest_discover_tests(bare_keepalive_server_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 60 RUN_SERIAL TRUE)
