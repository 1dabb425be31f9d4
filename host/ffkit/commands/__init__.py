"""The verbs of the ``ffkit`` command, one module each (ffkit.cli assembles them).

Every module here has ``add_arguments(parser)``, which adds the verb's options and sets
the parser's description, and ``run(args) -> int``, the exit code. A module imports heavy
libraries inside run() (or add_arguments, for a verb whose options live in its library),
so that ``ffkit --help`` and the other verbs start fast. A verb whose command line lives
in its library module (ffkit.board.fuzz, ffkit.bench, ffkit.parity, ...: ``add_arguments`` and
``run_cli``) has a thin module here that calls it. What several verbs share is in
_common. Library modules never import from here; this package imports from them.
"""
