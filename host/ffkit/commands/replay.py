"""ffkit replay: the command line of ffkit.sessions.replay (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "sessions.replay")


def run(args):
    return library("sessions.replay").run_cli(args)
