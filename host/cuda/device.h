/* Internal: what hardware the engine can run on. */
#ifndef CNX_HOST_DEVICE_H
#define CNX_HOST_DEVICE_H

#include "cuda_device.h"

/* The CPU threads the backend will use for a requested count (0: all cores). */
int cnx_cpu_thread_count(int requested);

#endif
