# The deterministic simulator (sim/): unit tests of its parts, whole seeded
# worlds, and the CI scale run of `resilink sim`.
add_executable(sim_test
  ${CMAKE_CURRENT_LIST_DIR}/prng_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checker_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/world_test.cpp)
target_link_libraries(sim_test PRIVATE resilink_sim GTest::gtest_main)
gtest_discover_tests(sim_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 300)

# Full scale (>= 10,000 client-hours, >= 100,000 outages) only in optimized,
# unsanitized builds; under ASan+UBSan a reduced run of the same command.
add_executable(sim_scale_test ${CMAKE_CURRENT_LIST_DIR}/sim_scale_test.cpp)
target_link_libraries(sim_scale_test PRIVATE GTest::gtest_main)
target_compile_definitions(sim_scale_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
if(RESILINK_SANITIZE)
  target_compile_definitions(sim_scale_test PRIVATE RESILINK_SIM_CLIENT_HOURS=300 RESILINK_SIM_MIN_OUTAGES=3000)
else()
  target_compile_definitions(sim_scale_test PRIVATE RESILINK_SIM_CLIENT_HOURS=10000 RESILINK_SIM_MIN_OUTAGES=100000)
endif()
add_dependencies(sim_scale_test resilink)
gtest_discover_tests(sim_scale_test DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
