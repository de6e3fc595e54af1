# cmake -DINPUT=FILE.txt -DOUTPUT=FILE.c -DNAME=symbol -P embed_lines.cmake
#
# Writes FILE.c, which defines `const char NAME[]` (FILE's bytes, each
# newline turned into a NUL, so that each line reads as a C string) and
# `const unsigned long NAME_size`. The bytes are written as numbers: no
# character of the text can be misread as C or as a CMake list.
foreach(var INPUT OUTPUT NAME)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_lines.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
if(size EQUAL 0 OR NOT hex MATCHES "0a$")
  message(FATAL_ERROR "${INPUT}: must be lines of text, each ending in a newline")
endif()
# Every match starts on a byte: each byte becomes "0xHH,", 16 to a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPLACE "0x0a," "0x00," bytes "${bytes}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "/* Generated from ${INPUT} by cmake/embed_lines.cmake. Do not edit. */\n"
  "const char ${NAME}[${size}] = {\n    ${bytes}\n};\n"
  "const unsigned long ${NAME}_size = ${size};\n")
# Only a changed text touches the output, so nothing rebuilds needlessly.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
