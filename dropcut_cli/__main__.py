"""`python -m dropcut_cli`: the same as the `dropcut` command."""

from dropcut_cli.app import main

main()
