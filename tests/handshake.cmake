# The server's id-line reader (server/include/resilink/server/handshake.h),
# without sockets. Included from tests/CMakeLists.txt.
add_executable(handshake_test ${CMAKE_CURRENT_LIST_DIR}/handshake_test.cpp)
target_link_libraries(handshake_test PRIVATE resilink_handshake GTest::gtest_main)
gtest_discover_tests(handshake_test DISCOVERY_TIMEOUT 60)
