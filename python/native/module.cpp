// cnx._native: the C API (include/cnx.h) for the Python package. The
// package's Python files (python/cnx/) check arguments and shape the results;
// this module converts, calls cnx with the GIL released, and raises the
// cnx.Error subclass of a failed call's status.
#include <nanobind/nanobind.h>

#include "cnx.h"
#include "engine.h"
#include "file_stream.h"
#include "images.h"

namespace nb = nanobind;

NB_MODULE(_native, m) {
    m.attr("version") = nb::make_tuple(CNX_VERSION_MAJOR, CNX_VERSION_MINOR, CNX_VERSION_PATCH);
    m.def("status_string", [](int status) { return cnx_status_string((cnx_status)status); });
    nb::class_<NativeEngine> engine_class = bind_engine(m);
    bind_file_stream(m, engine_class);
    bind_images(m);
}
