"""``python -m lattice.providers.logging --nats-url URL``: the logging provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["logging", *sys.argv[1:]]))
