# Real-kernel outages between two network namespaces (lab/src/netns.cpp).
# Included from tests/CMakeLists.txt. Needs root; each test skips itself
# (GTEST_SKIP with the reason) when it cannot build namespaces.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(netns_test ${CMAKE_CURRENT_LIST_DIR}/netns_test.cpp)
target_link_libraries(netns_test PRIVATE resilink_lab GTest::gtest_main Threads::Threads)
# RUN_SERIAL: the stall checks assert that nothing arrives for a second, which
# a loaded machine running other suites beside them would blur; the
# namespaces themselves are private per process. A test takes a few seconds
# (each outage waits out TCP's retransmission timer).
gtest_discover_tests(netns_test DISCOVERY_TIMEOUT 60 PROPERTIES RUN_SERIAL TRUE TIMEOUT 60)
