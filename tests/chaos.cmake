# The chaos proxy (lab/chaos_proxy.h). chaos_proxy_test: its parsers
# (toxic_test), pipes (toxic_pipe_test), toxics over raw loopback sockets
# (chaos_proxy_test) and `resilink chaos` (chaos_command_test). chaos_link_test:
# every fault against a real resilink Server and Client. Included from
# tests/CMakeLists.txt.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(chaos_proxy_test
  ${CMAKE_CURRENT_LIST_DIR}/toxic_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/toxic_pipe_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chaos_proxy_test.cpp
  ${CMAKE_CURRENT_LIST_DIR}/chaos_command_test.cpp)
target_include_directories(chaos_proxy_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(chaos_proxy_test PRIVATE resilink_lab GTest::gtest_main)
target_compile_definitions(chaos_proxy_test PRIVATE RESILINK_BINARY="$<TARGET_FILE:resilink>")
add_dependencies(chaos_proxy_test resilink)
# The prefix lets `ctest -R chaos` select every test of this part.
gtest_discover_tests(chaos_proxy_test TEST_PREFIX "chaos_proxy_test." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 60)

add_executable(chaos_link_test ${CMAKE_CURRENT_LIST_DIR}/chaos_link_test.cpp)
target_include_directories(chaos_link_test PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(chaos_link_test PRIVATE resilink_lab GTest::gtest_main)
gtest_discover_tests(chaos_link_test TEST_PREFIX "chaos_link_test." DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)

if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # g++ 12 at -O2 misreads Asio's coroutine-frame allocator as new/delete mismatch.
  target_compile_options(chaos_proxy_test PRIVATE -Wno-mismatched-new-delete)
  target_compile_options(chaos_link_test PRIVATE -Wno-mismatched-new-delete)
endif()
