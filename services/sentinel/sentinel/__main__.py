"""`python -m sentinel` runs the sentinel as a Faust worker."""

from sentinel.app import main

main()
