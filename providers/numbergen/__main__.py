"""``python -m lattice.providers.numbergen --nats-url URL``: the numbergen provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["numbergen", *sys.argv[1:]]))
