"""ffkit fuzz: the command line of ffkit.board.fuzz (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "board.fuzz")


def run(args):
    return library("board.fuzz").run_cli(args)
