"""ffkit replay: the command line of ffkit.replay (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "replay")


def run(args):
    return library("replay").run_cli(args)
