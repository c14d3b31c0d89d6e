/*
 * command.h: the program's subcommands in one table (app/command.c).
 */
#ifndef APP_COMMAND_H
#define APP_COMMAND_H

/*
 * Run argv as the program would (argv[0] the program's name, argv[1] the
 * subcommand if it does not start with '-'): read the config file, apply
 * the environment, then run the command.  Returns the exit status.
 */
int command_run(int argc, char **argv);

#endif
