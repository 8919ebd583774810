"""``python -m facebench`` runs the command line."""

from facebench.cli import main

main()
