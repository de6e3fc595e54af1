# cnx_add_layer(NAME SOURCES file... USES target...)
#
# One folder of libcnx, built as an object library. Its include path is its
# own folder and those of the layers it USES (and nothing else), so a folder
# can include only what lies below it. libcnx and cnx_internal are the
# layers' objects together (see the top-level CMakeLists.txt).
#
# A layer with no sources (the kernels in a build without CUDA) is an
# interface library: its headers, no objects.
function(cnx_add_layer name)
  cmake_parse_arguments(PARSE_ARGV 1 layer "" "" "SOURCES;USES")
  if(NOT layer_SOURCES)
    add_library(${name} INTERFACE)
    target_include_directories(${name} INTERFACE ${CMAKE_CURRENT_SOURCE_DIR})
    target_link_libraries(${name} INTERFACE ${layer_USES})
    return()
  endif()
  add_library(${name} OBJECT ${layer_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${layer_USES})
  # libcnx exports only the CNX_API functions.
  set_target_properties(${name} PROPERTIES C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden CUDA_VISIBILITY_PRESET hidden)
  set_property(GLOBAL APPEND PROPERTY CNX_LAYERS ${name})
  # What tests/layers checks the objects against: the layers this one uses.
  set(used_layers)
  foreach(used ${layer_USES})
    if(used MATCHES "^cnx_")
      list(APPEND used_layers ${used})
    endif()
  endforeach()
  set_property(TARGET ${name} PROPERTY CNX_USES_LAYERS "${used_layers}")
endfunction()
