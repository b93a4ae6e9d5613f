# Client shell and stdio bridge, over real loopback sockets against a peer
# built from a server-role core engine (support/loopback_peer.h). Included from
# tests/CMakeLists.txt.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(client_test ${CMAKE_CURRENT_LIST_DIR}/client_test.cpp)
target_include_directories(client_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(client_test PRIVATE resilink_client GTest::gtest_main Threads::Threads)
gtest_discover_tests(client_test)

# The bridge is compiled in from apps/ (it has no library of its own).
add_executable(client_bridge_test
  ${CMAKE_CURRENT_LIST_DIR}/client_bridge_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../apps/client_bridge.cpp)
target_include_directories(client_bridge_test PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_LIST_DIR}/../apps)
target_link_libraries(client_bridge_test PRIVATE resilink_client GTest::gtest_main Threads::Threads)
gtest_discover_tests(client_bridge_test)
