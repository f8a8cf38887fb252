# Installs the library into a temporary (custom) prefix, builds examples/wafer_lot.c against the
# INSTALLED copy twice - with `pkg-config --cflags --libs wafermon` alone (its Libs carry the
# rpath: no -Wl,-rpath, LD_LIBRARY_PATH or ldconfig needed) and as a CMake project using
# find_package(wafermon) - and runs both in direct mode into a temporary file tree. Nothing
# comes from the build tree. Run by ctest (install_example).
set(prefix "${BUILD_DIR}/install-test/prefix")
set(work "${BUILD_DIR}/install-test/work")
file(REMOVE_RECURSE "${BUILD_DIR}/install-test")
file(MAKE_DIRECTORY "${work}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
file(GLOB pcdirs "${prefix}/lib*/pkgconfig" "${prefix}/lib/*/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "${pcdirs}")
run(pkg-config --cflags --libs wafermon)
string(STRIP "${run_out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
string(FIND "${flags}" "-I${prefix}/" at)
if(at LESS 0 OR NOT EXISTS "${prefix}/include/wafermon.h")
  message(FATAL_ERROR "pkg-config did not point at the installed headers: ${flags}")
endif()
unset(ENV{LD_LIBRARY_PATH})
run(${C_COMPILER} -std=c11 -D_DEFAULT_SOURCE -Wall -Werror "${SOURCE_DIR}/examples/wafer_lot.c"
    ${flags} -pthread -o "${work}/wafer_lot")

# The same program as a CMake project of a user: find_package(wafermon) from the prefix.
file(WRITE "${work}/consumer/CMakeLists.txt" "
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(wafermon 0.1 REQUIRED)
add_executable(wafer_lot_cmake \"${SOURCE_DIR}/examples/wafer_lot.c\")
target_compile_definitions(wafer_lot_cmake PRIVATE _DEFAULT_SOURCE)
target_link_libraries(wafer_lot_cmake PRIVATE wafermon::wafermon)
")
run(${CMAKE_COMMAND} -S "${work}/consumer" -B "${work}/consumer/build"
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build "${work}/consumer/build")

set(ENV{WAFERMON_MODE} direct)
set(ENV{WAFERMON_SITE_ID} fab1)
set(ENV{WAFERMON_SPOOL_DIR} "${work}/spool")
foreach(program "${work}/wafer_lot" "${work}/consumer/build/wafer_lot_cmake")
  # it must load the installed shared library, found through its rpath
  run(ldd "${program}")
  string(FIND "${run_out}" "libwafermon.so.0 => ${prefix}/" at)
  if(at LESS 0)
    message(FATAL_ERROR "${program} does not use the installed libwafermon:\n${run_out}")
  endif()
  get_filename_component(name "${program}" NAME)
  set(ENV{WAFERMON_DIRECT_URL} "file://${work}/events-${name}")
  run("${program}" 26)
  message(STATUS "${run_out}")
  file(GLOB_RECURSE files "${work}/events-${name}/fab1/*/events.jsonl")
  set(lines 0)
  foreach(f IN LISTS files)
    file(STRINGS "${f}" content)
    list(LENGTH content n)
    math(EXPR lines "${lines} + ${n}")
  endforeach()
  # 26 wafers x (started, progress, finished|failed) + the lot's started and finished
  if(NOT lines EQUAL 80)
    message(FATAL_ERROR "expected 80 events from ${name}, found ${lines}")
  endif()
endforeach()
file(REMOVE_RECURSE "${BUILD_DIR}/install-test")
