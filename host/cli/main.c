/* cnx: the command-line front end. Dispatches to one subcommand. */
#include <stdio.h>
#include <string.h>

#include "cnx.h"
#include "commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommand;

static const subcommand subcommands[] = {
    {"classify", cmd_classify, "top-k classes for images or .npy tensors"},
    {"eval", cmd_eval, "top-1/top-5 accuracy over a folder of labelled images"},
    {"preprocess", cmd_preprocess, "write the model's input (or the pixels) as .npy"},
    {"stats", cmd_stats, "per-channel mean and std of a set of images"},
    {"info", cmd_info, "architecture and preprocessing carried by a weights file"},
};
enum { NUM_SUBCOMMANDS = sizeof subcommands / sizeof subcommands[0] };

static void print_usage(FILE *out) {
    fprintf(out, "usage: cnx COMMAND [OPTIONS] ...\n\ncommands:\n");
    for (int i = 0; i < NUM_SUBCOMMANDS; i++)
        fprintf(out, "  %-11s %s\n", subcommands[i].name, subcommands[i].summary);
    fprintf(out, "\n'cnx COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        print_usage(stdout);
        return EXIT_ALL_OK;
    }
    if (!strcmp(name, "--version")) {
        printf("cnx %d.%d.%d\n", CNX_VERSION_MAJOR, CNX_VERSION_MINOR, CNX_VERSION_PATCH);
        return EXIT_ALL_OK;
    }
    for (int i = 0; i < NUM_SUBCOMMANDS; i++)
        if (!strcmp(name, subcommands[i].name))
            return subcommands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "cnx: unknown command '%s'\n", name);
    print_usage(stderr);
    return EXIT_USAGE;
}
