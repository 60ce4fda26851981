"""Allow `python -m postroom`."""

from postroom.cli import main

main()
