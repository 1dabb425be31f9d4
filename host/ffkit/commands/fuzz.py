"""ffkit fuzz: the command line of ffkit.fuzz (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "fuzz")


def run(args):
    return library("fuzz").run_cli(args)
