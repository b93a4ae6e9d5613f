# `resilink soak`, `demo` and `lab` end to end (the CI soak and namespace
# runs). RUN_SERIAL: they time outages in real time and should not share the
# two cores with other tests.
add_executable(soak_test ${CMAKE_CURRENT_LIST_DIR}/soak_test.cpp)
target_include_directories(soak_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(soak_test PRIVATE resilink_lab GTest::gtest_main)
target_compile_definitions(soak_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(soak_test resilink)
gtest_discover_tests(soak_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 200 RUN_SERIAL TRUE)
