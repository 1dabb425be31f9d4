"""ffkit bench: the command line of ffkit.bench (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "bench")


def run(args):
    return library("bench").run_cli(args)
