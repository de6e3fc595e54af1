/* Internal: opening a file the user named, with the errors users expect. */
#ifndef CNX_HOST_INPUT_FILE_H
#define CNX_HOST_INPUT_FILE_H

#include <sys/stat.h>

#include "cnx.h"

/* Opens path read-only (without blocking, so a FIFO with no writer cannot
 * hang us; reads then block as usual) and fstats it. A directory is refused as "PATH: is a directory, not WHAT". On
 * success *fd is open and *info filled; on failure nothing is left open. */
cnx_status cnx_open_input_file(const char *path, const char *what, int *fd, struct stat *info);

#endif
