"""``python -m lattice.providers.blobstore --nats-url URL``: the blobstore provider on its own."""

import sys

from lattice.providers.__main__ import main

raise SystemExit(main(["blobstore", *sys.argv[1:]]))
