"""`python -m modelog`: the `modelog` command."""

from modelog.cli import main

main()
