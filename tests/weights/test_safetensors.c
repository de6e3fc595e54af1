/* The generic safetensors reader: dtype conversions bit by bit, well-formed
 * files of any dtype, and every way a header can lie.
 * Usage: test_safetensors WORK_DIR */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "safetensors_writer.h"
#include "test_check.h"

static char dir[2048];

static void test_f16_bits(void) {
    struct { uint16_t bits; float value; } cases[] = {
        {0x0000, 0.0f},          {0x3c00, 1.0f},           {0xc000, -2.0f},
        {0x3555, 0.333251953125f}, {0x7bff, 65504.0f},     {0x0400, 0x1p-14f},
        {0x0001, 0x1p-24f},      {0x03ff, 1023 * 0x1p-24f}, {0x8001, -0x1p-24f},
        {0x7c00, INFINITY},      {0xfc00, -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = cnx_f16_to_f32(cases[i].bits);
        CHECK(got == cases[i].value, "f16 %04x -> %a, want %a", cases[i].bits, (double)got,
              (double)cases[i].value);
    }
    CHECK(signbit(cnx_f16_to_f32(0x8000)) && cnx_f16_to_f32(0x8000) == 0.0f, "f16 -0");
    CHECK(isnan(cnx_f16_to_f32(0x7e00)), "f16 quiet NaN");
    CHECK(isnan(cnx_f16_to_f32(0x7c01)), "f16 signalling NaN stays NaN");
    CHECK(isnan(cnx_f16_to_f32(0xfe00)), "f16 negative NaN");
    /* Every finite F16 round-trips through the test's own encoder. */
    int mismatches = 0;
    for (uint32_t bits = 0; bits < 0x10000; bits++) {
        float value = cnx_f16_to_f32((uint16_t)bits);
        if (!isfinite(value)) continue;
        int exponent = (bits >> 10) & 0x1f;
        if (exponent == 0) continue; /* the encoder covers normals only */
        if (writer_f32_to_f16(value) != bits) mismatches++;
    }
    CHECK(mismatches == 0, "%d normal F16 values do not round-trip", mismatches);
}

static void test_bf16_bits(void) {
    struct { uint16_t bits; float value; } cases[] = {
        {0x0000, 0.0f},   {0x3f80, 1.0f},       {0xc040, -3.0f},  {0x4049, 3.140625f},
        {0x0001, 0x1p-133f}, {0x007f, 127 * 0x1p-133f}, {0x0080, 0x1p-126f},
        {0x7f7f, 0x1.fep127f}, {0x7f80, INFINITY}, {0xff80, -INFINITY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float got = cnx_bf16_to_f32(cases[i].bits);
        CHECK(got == cases[i].value, "bf16 %04x -> %a, want %a", cases[i].bits, (double)got,
              (double)cases[i].value);
    }
    CHECK(isnan(cnx_bf16_to_f32(0x7fc0)) && isnan(cnx_bf16_to_f32(0x7f81)), "bf16 NaN");
    CHECK(signbit(cnx_bf16_to_f32(0x8000)), "bf16 -0");
}

static void test_dtype_sizes(void) {
    CHECK(cnx_safetensors_dtype_size("F32") == 4, "F32 size");
    CHECK(cnx_safetensors_dtype_size("BF16") == 2, "BF16 size");
    CHECK(cnx_safetensors_dtype_size("F64") == 8, "F64 size");
    CHECK(cnx_safetensors_dtype_size("I64") == 8, "I64 size");
    CHECK(cnx_safetensors_dtype_size("U8") == 1, "U8 size");
    CHECK(cnx_safetensors_dtype_size("f32") == 0, "dtype names are case-sensitive");
    CHECK(cnx_safetensors_is_float_dtype("F16") && !cnx_safetensors_is_float_dtype("F64"),
          "float dtypes");
    char shape[64];
    int64_t dims[4] = {96, 3, 4, 4};
    cnx_safetensors_format_shape(dims, 4, shape, sizeof shape);
    CHECK(strcmp(shape, "[96, 3, 4, 4]") == 0, "format_shape: %s", shape);
    cnx_safetensors_format_shape(dims, 0, shape, sizeof shape);
    CHECK(strcmp(shape, "[]") == 0, "format_shape of a scalar: %s", shape);
    cnx_safetensors_format_shape(dims, 4, shape, 6);
    CHECK(strlen(shape) < 6, "format_shape truncates: %s", shape);
}

/* A file with tensors of several dtypes, a scalar and an empty tensor. */
static void test_well_formed(void) {
    char path[4096];
    test_path(path, sizeof path, dir, "mixed_dtypes.safetensors");
    /* F16 subnormal, 1.0, -inf; BF16 1.0; F32 2.5; I64 7; scalar F32; empty. */
    unsigned char data[] = {
        0x01, 0x00, 0x00, 0x3c, 0x00, 0xfc,       /* h: F16 [3]      0..6   */
        0x80, 0x3f,                               /* b: BF16 [1]     6..8   */
        0x00, 0x00, 0x20, 0x40,                   /* f: F32 [1]      8..12  */
        7, 0, 0, 0, 0, 0, 0, 0,                   /* i: I64 [1]      12..20 */
        0x00, 0x00, 0x80, 0xbf,                   /* s: F32 []       20..24 */
    };
    const char *header =
        "{\"__metadata__\":{\"format\":\"pt\",\"crop\":\"224\"},"
        "\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]},"
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[6,8]},"
        "\"f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
        "\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[12,20]},"
        "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[20,24]},"
        "\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[12,12]}}   ";
    CHECK(writer_write_raw(path, header, UINT64_MAX, data, sizeof data) == 0, "write");

    cnx_safetensors st;
    cnx_status status = cnx_safetensors_open(path, &st);
    CHECK(status == CNX_OK, "open well-formed: %s", cnx_last_error());
    if (status != CNX_OK) return;
    CHECK(st.num_tensors == 6, "6 tensors, got %zu", st.num_tensors);
    CHECK(strcmp(st.tensors[0].name, "h") == 0 && strcmp(st.tensors[5].name, "e") == 0,
          "header order kept");
    CHECK(cnx_safetensors_metadata(&st, "format") &&
              strcmp(cnx_safetensors_metadata(&st, "crop"), "224") == 0,
          "metadata lookup");
    CHECK(cnx_safetensors_metadata(&st, "resize") == NULL, "absent metadata is NULL");
    CHECK(cnx_safetensors_find(&st, "nope") == NULL, "absent tensor is NULL");

    const cnx_safetensors_tensor *h = cnx_safetensors_find(&st, "h");
    float values[3];
    CHECK(h && cnx_safetensors_to_f32(&st, h, values) == CNX_OK, "F16 to f32");
    CHECK(values[0] == 0x1p-24f && values[1] == 1.0f && values[2] == -INFINITY,
          "F16 values %g %g %g", (double)values[0], (double)values[1], (double)values[2]);
    const cnx_safetensors_tensor *b = cnx_safetensors_find(&st, "b");
    CHECK(b && b->ndim == 2 && b->numel == 1 && cnx_safetensors_to_f32(&st, b, values) == CNX_OK &&
              values[0] == 1.0f, "BF16 [1,1]");
    const cnx_safetensors_tensor *f = cnx_safetensors_find(&st, "f");
    CHECK(f && cnx_safetensors_to_f32(&st, f, values) == CNX_OK && values[0] == 2.5f, "F32");
    const cnx_safetensors_tensor *s = cnx_safetensors_find(&st, "s");
    CHECK(s && s->ndim == 0 && s->numel == 1 && cnx_safetensors_to_f32(&st, s, values) == CNX_OK &&
              values[0] == -1.0f, "F32 scalar");
    const cnx_safetensors_tensor *e = cnx_safetensors_find(&st, "e");
    CHECK(e && e->numel == 0 && e->nbytes == 0, "empty tensor");
    const cnx_safetensors_tensor *i = cnx_safetensors_find(&st, "i");
    CHECK(i && i->element_size == 8, "I64 element size");
    CHECK_FAILS(cnx_safetensors_to_f32(&st, i, values), CNX_ERROR_UNSUPPORTED, path,
                "dtype I64", "I64 to f32");
    cnx_safetensors_close(&st);
    cnx_safetensors_close(&st); /* closing twice is harmless */

    /* The same bytes from memory. */
    size_t size = 8 + strlen(header) + sizeof data;
    unsigned char *bytes = malloc(size);
    uint64_t length = strlen(header);
    for (int k = 0; k < 8; k++) bytes[k] = (unsigned char)(length >> (8 * k));
    memcpy(bytes + 8, header, length);
    memcpy(bytes + 8 + length, data, sizeof data);
    status = cnx_safetensors_open_memory(bytes, size, "in-memory", &st);
    CHECK(status == CNX_OK && st.num_tensors == 6, "open_memory: %s", cnx_last_error());
    cnx_safetensors_close(&st);
    CHECK_FAILS(cnx_safetensors_open_memory(bytes, 7, "in-memory", &st), CNX_ERROR_WEIGHTS,
                "in-memory", "truncated", "open_memory of 7 bytes");
    CHECK(st.tensors == NULL && st.num_tensors == 0, "failed open leaves st zeroed");
    free(bytes);
}

static void test_file_errors(void) {
    char path[4096];
    cnx_safetensors st;

    test_path(path, sizeof path, dir, "no_such_file.safetensors");
    unlink(path);
    CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_IO, path, "No such file",
                "missing file");

    test_path(path, sizeof path, dir, "a_directory.safetensors");
    test_make_dir(path);
    CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_IO, path, "directory", "directory");

    test_path(path, sizeof path, dir, "empty.safetensors");
    writer_write_bytes(path, "", 0);
    CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_IO, path, "empty", "zero-byte file");

    test_path(path, sizeof path, dir, "unreadable.safetensors");
    writer_write_raw(path, "{}", UINT64_MAX, NULL, 0);
    chmod(path, 0);
    if (geteuid() != 0) /* root reads anything */
        CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_IO, path, "Permission denied",
                    "unreadable file");
    chmod(path, 0644);

    test_path(path, sizeof path, dir, "five_bytes.safetensors");
    writer_write_bytes(path, "\x02\0\0\0\0", 5);
    CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_WEIGHTS, path, "truncated",
                "5-byte file");

    test_path(path, sizeof path, dir, "text.safetensors");
    writer_write_bytes(path, "hello, this is a text file\n", 27);
    CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_WEIGHTS, path, "not safetensors",
                "text file");

    /* Over the header limit: a sparse file costs no disk. */
    test_path(path, sizeof path, dir, "huge_header.safetensors");
    uint64_t huge = CNX_SAFETENSORS_MAX_HEADER_BYTES + 1;
    unsigned char length[8];
    for (int k = 0; k < 8; k++) length[k] = (unsigned char)(huge >> (8 * k));
    writer_write_bytes(path, length, 8);
    if (truncate(path, (off_t)(huge + 8)) == 0)
        CHECK_FAILS(cnx_safetensors_open(path, &st), CNX_ERROR_TOO_LARGE, path, "limit",
                    "100 MB header");
    unlink(path);
}

typedef struct header_case {
    const char *label;
    const char *header;
    uint64_t header_length; /* UINT64_MAX: the true length */
    size_t data_size;
    cnx_status status;
    const char *word;
} header_case;

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static const header_case header_cases[] = {
    {"header length past the end", "{" T1 "}", 4096, 8, CNX_ERROR_WEIGHTS, "runs past the end"},
    {"header length 0", "{" T1 "}", 0, 8, CNX_ERROR_WEIGHTS, "not valid JSON"},
    {"invalid JSON", "{\"t\":{\"dtype\":\"F32\",", UINT64_MAX, 8, CNX_ERROR_WEIGHTS,
     "not valid JSON"},
    {"JSON with a trailing comma", "{" T1 ",}", UINT64_MAX, 8, CNX_ERROR_WEIGHTS,
     "not valid JSON"},
    {"JSON then garbage", "{" T1 "}xyz", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not valid JSON"},
    {"JSON then NUL bytes", "{" T1 "}\0\0\0", 3 + sizeof("{" T1 "}") - 1, 8,
     CNX_ERROR_WEIGHTS, "not valid JSON"},
    {"JSON array", "[1,2,3]", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not a JSON object"},
    {"JSON string", "\"hello\"", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not a JSON object"},
    {"JSON null", "null    ", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not a JSON object"},
    {"tensor entry null", "{\"t\":null}", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not an object"},
    {"invalid UTF-8", "{\"\xff\xfe\":1}", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not valid JSON"},
    {"entry not an object", "{\"t\":5}", UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not an object"},
    {"dtype missing", "{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "dtype"},
    {"dtype not a string", "{\"t\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "dtype"},
    {"unknown dtype", "{\"t\":{\"dtype\":\"Q4\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_UNSUPPORTED, "unknown dtype"},
    {"shape missing", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "shape"},
    {"negative shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "shape entry 0"},
    {"fractional shape", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "shape entry 0"},
    {"nine dimensions",
     "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "dimensions"},
    {"shape overflow",
     "{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "too large"},
    {"shape too big for int64",
     "{\"t\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "shape entry 0 is out of range"},
    {"offsets missing", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "data_offsets"},
    {"three offsets", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "data_offsets"},
    {"negative offset", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "data_offsets"},
    {"begin after end", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "begin 8 is after end 0"},
    {"offsets past the end", "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "past the end of the data"},
    {"huge offsets",
     "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,"
     "18446744073709551615]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "data_offsets are out of range"},
    {"size mismatch", "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "needs 3 elements"},
    {"overlap",
     "{" T1 ",\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "overlap"},
    {"overlap, same range",
     "{" T1 ",\"u\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "overlap"},
    {"overlap, nested",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},"
     "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
     UINT64_MAX, 16, CNX_ERROR_WEIGHTS, "overlap"},
    {"metadata not an object", "{\"__metadata__\":[\"a\"]," T1 "}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "__metadata__"},
    {"metadata value a number", "{\"__metadata__\":{\"resize\":236}," T1 "}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "not a string"},
    {"metadata value null", "{\"__metadata__\":{\"source\":null}," T1 "}", UINT64_MAX, 8,
     CNX_ERROR_WEIGHTS, "not a string"},
    {"deep nesting", "{\"t\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
     UINT64_MAX, 8, CNX_ERROR_WEIGHTS, "not valid JSON"},
};

static void test_header_lies(void) {
    unsigned char data[16] = {0};
    for (size_t i = 0; i < sizeof header_cases / sizeof header_cases[0]; i++) {
        const header_case *c = &header_cases[i];
        char path[4096], name[64];
        snprintf(name, sizeof name, "header_case_%02zu.safetensors", i);
        test_path(path, sizeof path, dir, name);
        /* Write the header bytes as given, NULs included, when a length says so. */
        size_t text = strlen(c->header);
        size_t bytes = c->header_length != UINT64_MAX && c->header_length > text &&
                               c->header_length < 64 + text
                           ? (size_t)c->header_length
                           : text;
        size_t size = 8 + bytes + c->data_size;
        unsigned char *file = calloc(1, size);
        uint64_t length = c->header_length == UINT64_MAX ? text : c->header_length;
        for (int k = 0; k < 8; k++) file[k] = (unsigned char)(length >> (8 * k));
        memcpy(file + 8, c->header, text);
        memcpy(file + 8 + bytes, data, c->data_size);
        writer_write_bytes(path, file, size);
        free(file);

        cnx_safetensors st;
        CHECK_FAILS(cnx_safetensors_open(path, &st), c->status, path, c->word, c->label);
    }
}

/* The padded header of a real writer, and whitespace inside it, are fine. */
static void test_whitespace(void) {
    char path[4096];
    test_path(path, sizeof path, dir, "whitespace.safetensors");
    float data[2] = {1, 2};
    writer_write_raw(path, " \n{ \"t\" : { \"dtype\" : \"F32\", \"shape\" : [ 2 ], "
                           "\"data_offsets\" : [ 0, 8 ] } }\t\r\n    ",
                     UINT64_MAX, data, sizeof data);
    cnx_safetensors st;
    CHECK(cnx_safetensors_open(path, &st) == CNX_OK, "whitespace: %s", cnx_last_error());
    cnx_safetensors_close(&st);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    if (test_make_dir(dir) != 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        return 2;
    }
    test_f16_bits();
    test_bf16_bits();
    test_dtype_sizes();
    test_well_formed();
    test_file_errors();
    test_header_lies();
    test_whitespace();
    return test_summary();
}
