"""ffkit parity: the command line of ffkit.parity (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "parity")


def run(args):
    return library("parity").run_cli(args)
