#include "json_output.h"

#include <math.h>

/* The length of the well-formed UTF-8 sequence starting at p (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0 when p does
 * not start one. */
static int utf8_sequence_length(const unsigned char *p) {
    const unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    int length;
    unsigned char low = 0x80, high = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        length = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        length = 3;
        if (c == 0xe0) low = 0xa0;  /* overlong */
        if (c == 0xed) high = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        length = 4;
        if (c == 0xf0) low = 0x90;  /* overlong */
        if (c == 0xf4) high = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (p[1] < low || p[1] > high)
        return 0;
    for (int i = 2; i < length; i++) /* a NUL stops here too: it is no continuation byte */
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return length;
}

void json_write_string(FILE *out, const char *text) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        const int length = utf8_sequence_length(p);
        if (length == 0) {
            fputs("\\ufffd", out); /* JSON must be UTF-8: each invalid byte becomes U+FFFD */
            p++;
            continue;
        }
        switch (*p) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fwrite(p, 1, (size_t)length, out);
        }
        p += length;
    }
    fputc('"', out);
}

void json_write_float(FILE *out, double value) {
    if (isfinite(value))
        fprintf(out, "%.9g", value);
    else
        fputs("null", out);
}
