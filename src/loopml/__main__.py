"""``python -m loopml`` runs the command line."""

from loopml.cli import main

main()
