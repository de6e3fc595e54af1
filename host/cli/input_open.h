/* Opening a file the user named for reading, without hanging on a FIFO. */
#ifndef CNX_CLI_INPUT_OPEN_H
#define CNX_CLI_INPUT_OPEN_H

#include <stdio.h>

/* fopen(path, "rb"), except that opening a FIFO with no writer returns at
 * once (its reads then see end of file) and a directory fails with EISDIR. */
FILE *input_open(const char *path);

#endif
