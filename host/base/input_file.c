#define _POSIX_C_SOURCE 200809L
#include "input_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

cnx_status cnx_open_input_file(const char *path, const char *what, int *fd, struct stat *info) {
    *fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0)
        return cnx_fail(CNX_ERROR_IO, "%s: cannot open: %s", path, strerror(errno));
    cnx_status status = CNX_OK;
    if (fstat(*fd, info) != 0)
        status = cnx_fail(CNX_ERROR_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(info->st_mode))
        status = cnx_fail(CNX_ERROR_IO, "%s: is a directory, not %s", path, what);
    /* Reads block again, so a pipe whose writer is slow is waited for. */
    else if (fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) & ~O_NONBLOCK) != 0)
        status = cnx_fail(CNX_ERROR_IO, "%s: cannot read: %s", path, strerror(errno));
    if (status != CNX_OK) {
        close(*fd);
        *fd = -1;
    }
    return status;
}
