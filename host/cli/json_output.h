/* Writing JSON strings and numbers for --json output. */
#ifndef CNX_CLI_JSON_OUTPUT_H
#define CNX_CLI_JSON_OUTPUT_H

#include <stdio.h>

/* Writes text as a quoted JSON string, escaping what JSON requires. Bytes
 * that are not well-formed UTF-8 (a path can hold any bytes) are written as
 * U+FFFD, one per byte, so the output is always valid JSON. */
void json_write_string(FILE *out, const char *text);

/* Writes a float with enough digits to round-trip; NaN and inf as null. */
void json_write_float(FILE *out, double value);

#endif
