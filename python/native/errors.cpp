#include "errors.h"

#include <nanobind/nanobind.h>

namespace nb = nanobind;

void raise_status(cnx_status status, const std::string &message) {
    nb::object error_class = nb::module_::import_("cnx._errors").attr("error_class")((int)status);
    PyErr_SetString(error_class.ptr(), message.c_str());
    throw nb::python_error();
}

void check_status(cnx_status status) {
    if (status != CNX_OK)
        raise_status(status, cnx_last_error());
}
