"""`python -m obslab`: the same as the `obslab` command."""

from obslab.cli import main

main()
