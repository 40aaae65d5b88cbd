# Precompiled headers: the third-party headers that nearly every file includes (JSON, Asio,
# spdlog; GoogleTest in tests) are parsed once per build tree instead of once per
# translation unit. Two donor targets build them; every other C++ target reuses one, so all
# share the project-wide compile options the donors were built with.

set(DPUSTOR_PCH_HEADERS
  <nlohmann/json.hpp> <boost/asio.hpp> <spdlog/spdlog.h>
  <chrono> <filesystem> <functional> <map> <memory> <optional> <string> <thread> <vector>)

file(WRITE ${PROJECT_BINARY_DIR}/pch_donor.cc "// Compiles only the precompiled header.\n")

# dpustor_pch_donor(NAME [HEADERS extra...] [LIBS extra...]): the common headers and the
# libraries whose definitions they are compiled with, plus the extra ones.
function(dpustor_pch_donor name)
  cmake_parse_arguments(D "" "" "HEADERS;LIBS" ${ARGN})
  add_library(${name} OBJECT ${PROJECT_BINARY_DIR}/pch_donor.cc)
  set_target_properties(${name} PROPERTIES UNITY_BUILD OFF)
  target_link_libraries(${name} PRIVATE Boost::boost nlohmann_json::nlohmann_json spdlog::spdlog
                                        ${D_LIBS})
  target_precompile_headers(${name} PRIVATE ${DPUSTOR_PCH_HEADERS} ${D_HEADERS})
endfunction()

# Every library and executable under dir that links the project's libraries reuses a donor's
# header: the test one when the target links GoogleTest. A target without spdlog's
# definitions cannot use the header (GCC refuses it, and -Winvalid-pch makes that an error).
function(dpustor_reuse_pch dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(type ${t} TYPE)
    if(NOT type MATCHES "^(STATIC_LIBRARY|SHARED_LIBRARY|OBJECT_LIBRARY|EXECUTABLE)$"
       OR t MATCHES "^dpustor_pch")
      continue()
    endif()
    get_target_property(libs ${t} LINK_LIBRARIES)
    if(NOT libs MATCHES "dpustor_|spdlog::spdlog")
      continue()
    endif()
    if(TARGET dpustor_pch_test AND "GTest::gtest" IN_LIST libs)
      target_precompile_headers(${t} REUSE_FROM dpustor_pch_test)
    else()
      target_precompile_headers(${t} REUSE_FROM dpustor_pch)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    dpustor_reuse_pch(${sub})
  endforeach()
endfunction()
