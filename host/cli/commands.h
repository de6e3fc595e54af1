/* The cnx subcommands. Each takes its own argv (argv[0] is the subcommand's
 * name) and returns the process exit status of docs/design.md section 5:
 * 0 all images done, 1 some images failed, 2 usage or weights error. */
#ifndef CNX_CLI_COMMANDS_H
#define CNX_CLI_COMMANDS_H

enum { EXIT_ALL_OK = 0, EXIT_SOME_FAILED = 1, EXIT_USAGE = 2 };

int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_info(int argc, char **argv);

#endif
