"""``python -m lattice.providers.messaging --nats-url URL``: the messaging provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["messaging", *sys.argv[1:]]))
