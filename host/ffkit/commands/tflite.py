"""ffkit tflite: the command line of ffkit.interop.tflite (add_arguments, run_cli)."""

from ffkit.commands._common import delegate_arguments, library


def add_arguments(p):
    delegate_arguments(p, "interop.tflite")


def run(args):
    return library("interop.tflite").run_cli(args)
