"""``python -m lattice.providers.httpserver --nats-url URL``: the HTTP server provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["httpserver", *sys.argv[1:]]))
