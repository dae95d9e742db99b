"""`python -m scrubber` runs the command line."""

from scrubber.cli import main

main()
