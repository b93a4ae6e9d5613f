# resilink::Server over real loopback TCP, against hand-written v1 clients on
# blocking POSIX sockets. Included from tests/CMakeLists.txt.
add_executable(server_test server_test.cpp)
target_link_libraries(server_test PRIVATE resilink_server GTest::gtest_main)
target_include_directories(server_test PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
gtest_discover_tests(server_test DISCOVERY_TIMEOUT 60)

# The server's timer wheel in virtual time (server/include/resilink/server/timer_wheel.h).
add_executable(timer_wheel_test timer_wheel_test.cpp)
target_link_libraries(timer_wheel_test PRIVATE resilink_timer_wheel GTest::gtest_main)
gtest_discover_tests(timer_wheel_test DISCOVERY_TIMEOUT 60)
