"""ffkit flash: the command line of ffkit.flash (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "flash")


def run(args):
    return library("flash").run_cli(args)
