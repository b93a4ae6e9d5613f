# The soak's recorder and report, on literal timestamps; the soak, demo and
# lab commands end to end. Included from tests/CMakeLists.txt.
add_executable(recorder_test ${CMAKE_CURRENT_LIST_DIR}/recorder_test.cpp)
target_link_libraries(recorder_test PRIVATE resilink_lab GTest::gtest_main)
gtest_discover_tests(recorder_test)

add_executable(live_view_test ${CMAKE_CURRENT_LIST_DIR}/live_view_test.cpp)
target_link_libraries(live_view_test PRIVATE resilink_lab GTest::gtest_main)
gtest_discover_tests(live_view_test)

