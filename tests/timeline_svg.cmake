# The outage timeline picture (lab/src/timeline_svg.cpp): a well-formed SVG
# with one element per band and mark, thinned points, escaped text.
# Included from tests/CMakeLists.txt.
if(NOT TARGET GTest::gtest_main)
  find_package(GTest REQUIRED)
endif()
include(GoogleTest)

add_executable(timeline_svg_test ${CMAKE_CURRENT_LIST_DIR}/timeline_svg_test.cpp)
target_link_libraries(timeline_svg_test PRIVATE resilink_lab GTest::gtest_main)
gtest_discover_tests(timeline_svg_test)
