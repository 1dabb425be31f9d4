"""ffkit sim: the command line of ffkit.sim (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "sim")


def run(args):
    return library("sim").run_cli(args)
