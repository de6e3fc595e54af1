/* The GPU refusing a model, on the emulated GPU (tests/gpu/emulate_cuda.h):
 * cuBLASLt missing, and a device this build has no kernels for. Each is
 * CNX_ERROR_NO_DEVICE naming the cause under CNX_DEVICE_CUDA; under
 * CNX_DEVICE_AUTO the engine runs on the CPU, cnx_engine_fallback_reason
 * gives the whole message, and the CLI's engine_report (host/cli/) prints it
 * as one line. No GPU needed.
 *
 *   emulate_refusals */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cuda_runtime.h>

#include "cnx.h"
#include "cublaslt_library.h"
#include "engine_flags.h"
#include "emulate_api.h"
#include "test_check.h"


/* A small engine on `device` with the next call of `failing` failing with
 * `error` (NULL: none). */
static cnx_status create(cnx_device device, const char *failing, int error, cnx_engine **engine) {
    cnx_options options = cnx_default_options();
    options.device = device;
    options.max_batch = 1;
    options.input_size = 32;
    emu_fail_call(failing, 0, error);
    const cnx_status status = cnx_engine_create_random("convnext_atto", 1, &options, engine);
    emu_fail_call(NULL, 0, 0);
    return status;
}

/* What engine_report writes to stderr. */
static void report_text(const cnx_engine *engine, char *text, size_t size) {
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    FILE *captured = tmpfile();
    fflush(stderr);
    const int saved = dup(2);
    dup2(fileno(captured), 2);
    engine_report(engine, &info);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(captured);
    const size_t got = fread(text, 1, size - 1, captured);
    text[got] = '\0';
    fclose(captured);
}

/* Under CUDA: the refusal naming `cause`. Under AUTO: the CPU, with the
 * whole message as the fallback reason and a word of it in device_name. */
static void check_refusal(const char *label, const char *failing, int error, const char *cause) {
    cnx_engine *engine = NULL;
    CHECK_FAILS(create(CNX_DEVICE_CUDA, failing, error, &engine), CNX_ERROR_NO_DEVICE, cause, cause,
                label);
    CHECK(engine == NULL, "%s: an engine after a refusal", label);
    char refusal[1024];
    snprintf(refusal, sizeof refusal, "%s", cnx_last_error());
    printf("%s: %s\n", label, refusal);

    CHECK(create(CNX_DEVICE_AUTO, failing, error, &engine) == CNX_OK, "%s, auto: %s", label,
          cnx_last_error());
    if (!engine)
        return;
    cnx_model_info info;
    cnx_engine_info(engine, &info);
    const char *reason = cnx_engine_fallback_reason(engine);
    CHECK(info.device == CNX_DEVICE_CPU && strstr(info.device_name, "GPU could not be used"),
          "%s, auto: runs on %s", label, info.device_name);
    CHECK(reason && strcmp(reason, refusal) == 0, "%s, auto: the fallback reason is \"%s\", not \"%s\"",
          label, reason ? reason : "(null)", refusal);
    CHECK(strlen(refusal) > 40, "%s: \"%s\" is too short to show that nothing is cut", label, refusal);
    char report[4096], want[2048];
    report_text(engine, report, sizeof report);
    snprintf(want, sizeof want, "\ncnx: --device auto: running on the CPU: %s\n", refusal);
    const char *line = strchr(report, '\n');
    CHECK(!strncmp(report, "cnx: convnext_atto on CPU", 25) && line && !strcmp(line, want),
          "%s, auto: the CLI reports \"%s\"", label, report);
    cnx_engine_destroy(engine);
}

int main(void) {
    check_refusal("cuBLASLt missing", "cnx_cublaslt_load", 1, CNX_CUBLASLT_SONAME);
    check_refusal("no kernel image", "cudaFuncGetAttributes", cudaErrorNoKernelImageForDevice,
                  "CUDA device 0 has compute capability 9.0 and this cnx has kernels for 8.0 only");

    /* Where the GPU takes the model, or the CPU was asked for, there is no reason. */
    cnx_engine *engine = NULL;
    CHECK(create(CNX_DEVICE_AUTO, NULL, 0, &engine) == CNX_OK, "auto: %s", cnx_last_error());
    cnx_model_info info;
    if (engine) {
        cnx_engine_info(engine, &info);
        CHECK(info.device == CNX_DEVICE_CUDA && !cnx_engine_fallback_reason(engine),
              "auto on a GPU that takes the model: %s, reason %s", info.device_name,
              cnx_engine_fallback_reason(engine));
        char report[4096];
        report_text(engine, report, sizeof report);
        CHECK(strstr(report, "on Emulated CUDA device") && strchr(report, '\n') == strrchr(report, '\n'),
              "auto on a GPU that takes the model: the CLI reports \"%s\"", report);
        cnx_engine_destroy(engine);
    }
    CHECK(create(CNX_DEVICE_CPU, NULL, 0, &engine) == CNX_OK, "cpu: %s", cnx_last_error());
    CHECK(engine && !cnx_engine_fallback_reason(engine), "the CPU by choice has a fallback reason");
    cnx_engine_destroy(engine);
    CHECK(!cnx_engine_fallback_reason(NULL), "a NULL engine has a fallback reason");
    return test_summary();
}
