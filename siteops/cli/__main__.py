"""`python -m siteops.cli`."""

from siteops.cli import main

main()
