# bpf_object(NAME SOURCE [HEADERS ...])
#
# Compiles bpf/SOURCE with clang -target bpf and generates a libbpf skeleton with
# `bpftool gen skeleton`. Creates an INTERFACE target NAME_skel whose include directory
# holds NAME.skel.h and which links libbpf. The object itself is NAME.bpf.o in the
# build directory (bpf/CMakeLists.txt installs the data plane's objects).
find_program(BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

execute_process(COMMAND uname -m OUTPUT_VARIABLE _bpf_uname_m OUTPUT_STRIP_TRAILING_WHITESPACE)
if(_bpf_uname_m STREQUAL "x86_64")
  set(BPF_TARGET_ARCH x86)
elseif(_bpf_uname_m STREQUAL "aarch64")
  set(BPF_TARGET_ARCH arm64)
else()
  set(BPF_TARGET_ARCH ${_bpf_uname_m})
endif()

# -mcpu=v3: 32-bit subregisters and 32-bit jumps (kernel 5.1+); clang 14's default (v1)
# widens every 32-bit compare with shifts.
function(bpf_object name src)
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel_dir ${CMAKE_CURRENT_BINARY_DIR}/skel)
  set(skel ${skel_dir}/${name}.skel.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_${BPF_TARGET_ARCH}
            -Wall -Werror
            -I${PROJECT_SOURCE_DIR}/include -I${CMAKE_CURRENT_SOURCE_DIR}
            -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE}
            -c ${CMAKE_CURRENT_SOURCE_DIR}/${src} -o ${obj}
    DEPENDS ${src} ${ARGN}
    IMPLICIT_DEPENDS C ${CMAKE_CURRENT_SOURCE_DIR}/${src}
    COMMENT "BPF ${name}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${skel_dir}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${skel_dir})
  target_link_libraries(${name}_skel INTERFACE PkgConfig::LIBBPF)
  set_property(GLOBAL APPEND PROPERTY RINGLB_BPF_OBJECTS ${obj})
endfunction()
