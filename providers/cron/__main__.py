"""``python -m lattice.providers.cron --nats-url URL``: the cron provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["cron", *sys.argv[1:]]))
