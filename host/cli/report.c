#include "report.h"

#include <stdio.h>
#include <string.h>

#include "cnx.h"

void report_failure(const char *path) {
    const char *message = cnx_last_error();
    const size_t len = strlen(path);
    if (!strncmp(message, path, len) && message[len] == ':')
        fprintf(stderr, "cnx: %s\n", message);
    else
        fprintf(stderr, "cnx: %s: %s\n", path, message);
}
