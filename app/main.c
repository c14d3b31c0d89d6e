/*
 * main.c: the program's entry; app/command.c holds the table of
 * subcommands and the order settings are read in.
 */
#include "app/command.h"

int
main(int argc, char **argv)
{
	return command_run(argc, argv);
}
