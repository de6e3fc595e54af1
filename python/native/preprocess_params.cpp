#include "preprocess_params.h"

#include <climits>
#include <string>

#include <nanobind/stl/string.h>

namespace nb = nanobind;

nb::dict preprocess_to_dict(const cnx_preprocess &p) {
    nb::dict d;
    d["resize"] = p.resize;
    d["crop"] = p.crop;
    d["mean"] = nb::make_tuple(p.mean[0], p.mean[1], p.mean[2]);
    d["std"] = nb::make_tuple(p.std[0], p.std[1], p.std[2]);
    d["normalize"] = p.normalize != 0;
    d["interpolation"] = cnx_interpolation_name(p.interpolation);
    d["crop_mode"] = cnx_crop_mode_name(p.crop_mode);
    d["crop_offset"] = cnx_crop_offset_name(p.crop_offset);
    d["rescale_factor"] = p.rescale_factor;
    return d;
}

static std::string python_type_name(nb::handle value) {
    return nb::cast<std::string>(nb::str(value.type().attr("__name__")));
}

[[noreturn]] static void wrong_type(const std::string &key, const char *wanted,
                                    nb::handle value) {
    throw nb::type_error(("preprocess '" + key + "' takes " + wanted + ", got " +
                          python_type_name(value)).c_str());
}

// numpy's bool is no int either, but it has no __index__.
static bool is_bool(nb::handle value) {
    return PyBool_Check(value.ptr()) ||
           nb::cast<std::string>(nb::str(value.type().attr("__name__"))).rfind("bool", 0) == 0;
}

// An int, numpy's included (anything with __index__), but not a bool, nor a
// str or float that int() would read.
static int read_int(const std::string &key, nb::handle value) {
    if (!PyIndex_Check(value.ptr()) || is_bool(value))
        wrong_type(key, "an int", value);
    long long v = PyLong_AsLongLong(nb::steal(PyNumber_Index(value.ptr())).ptr());
    if (PyErr_Occurred() || v < INT_MIN || v > INT_MAX) {
        PyErr_Clear();
        throw nb::value_error(("preprocess '" + key + "' is out of range").c_str());
    }
    return (int)v;
}

// A real number: int or float, numpy's included, not a bool or a str.
static double read_number(const std::string &key, nb::handle value) {
    if (is_bool(value) || PyUnicode_Check(value.ptr()) ||
        !(PyIndex_Check(value.ptr()) || PyFloat_Check(value.ptr()) ||
          nb::hasattr(value, "__float__")))
        wrong_type(key, "a number", value);
    double v = PyFloat_AsDouble(value.ptr());
    if (PyErr_Occurred()) {
        PyErr_Clear();
        wrong_type(key, "a number", value);
    }
    return v;
}

static void read_triple(const std::string &key, nb::handle value, float out[3]) {
    if (!PySequence_Check(value.ptr()) || PyUnicode_Check(value.ptr()))
        wrong_type(key, "three numbers (R, G, B)", value);
    nb::sequence items = nb::borrow<nb::sequence>(value);
    if (nb::len(items) != 3)
        throw nb::value_error(("preprocess '" + key + "' takes three numbers (R, G, B), got " +
                               std::to_string(nb::len(items))).c_str());
    for (size_t c = 0; c < 3; c++)
        out[c] = (float)read_number(key, items[c]);
}

// A named choice: parse(name, &out) returns 0 for a known name.
template <class Enum>
static void read_name(const std::string &key, nb::handle value,
                      int (*parse)(const char *, Enum *), Enum *out) {
    if (!PyUnicode_Check(value.ptr()))
        wrong_type(key, "a name", value);
    std::string name = nb::cast<std::string>(value);
    if (parse(name.c_str(), out) != 0)
        throw nb::value_error(("preprocess '" + key + "': unknown name '" + name + "'").c_str());
}

void apply_preprocess_overrides(cnx_preprocess &p, const nb::dict &overrides) {
    for (auto [key_object, value] : overrides) {
        std::string key = nb::cast<std::string>(nb::str(key_object));
        if (key == "resize")
            p.resize = read_int(key, value);
        else if (key == "crop")
            p.crop = read_int(key, value);
        else if (key == "mean")
            read_triple(key, value, p.mean);
        else if (key == "std")
            read_triple(key, value, p.std);
        else if (key == "normalize") {
            if (!is_bool(value))
                wrong_type(key, "True or False", value);
            p.normalize = PyObject_IsTrue(value.ptr()) == 1;
        } else if (key == "interpolation")
            read_name(key, value, cnx_interpolation_parse, &p.interpolation);
        else if (key == "crop_mode")
            read_name(key, value, cnx_crop_mode_parse, &p.crop_mode);
        else if (key == "crop_offset")
            read_name(key, value, cnx_crop_offset_parse, &p.crop_offset);
        else if (key == "rescale_factor")
            p.rescale_factor = read_number(key, value);
        else
            throw nb::value_error(("unknown preprocess key '" + key +
                                   "' (known: resize, crop, mean, std, normalize, interpolation, "
                                   "crop_mode, crop_offset, rescale_factor)").c_str());
    }
}
