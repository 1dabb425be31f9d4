"""ffkit flash: the command line of ffkit.board.flash (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "board.flash")


def run(args):
    return library("board.flash").run_cli(args)
