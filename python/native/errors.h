// Turning a cnx_status into the matching cnx.Error subclass (cnx/_errors.py).
#pragma once

#include <string>

#include "cnx.h"

// Raises the exception for `status` with `message` (the GIL must be held).
[[noreturn]] void raise_status(cnx_status status, const std::string &message);

// Raises with cnx_last_error() unless status is CNX_OK. Call it on the thread
// that made the failing call, right after it: the message is per thread.
void check_status(cnx_status status);
