"""``python -m lattice.providers.keyvalue --nats-url URL``: the keyvalue provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["keyvalue", *sys.argv[1:]]))
