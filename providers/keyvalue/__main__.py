"""``python -m providers.keyvalue --nats-url URL``: the keyvalue provider on its own."""

import sys

from providers.__main__ import main

raise SystemExit(main(["keyvalue", *sys.argv[1:]]))
