/* One-line error reports on stderr for a library failure about a file. */
#ifndef CNX_CLI_REPORT_H
#define CNX_CLI_REPORT_H

/* Prints "cnx: PATH: <cnx_last_error()>", without repeating PATH when the
 * library's message already starts with it. */
void report_failure(const char *path);

#endif
