"""`python -m reasonlab.cli ...` runs the `reasonlab` command."""

from reasonlab.cli.app import main

main()
