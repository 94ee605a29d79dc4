"""What every lattice participant shares (the protocol of SPEC §1–§4), the control plane (``control``),
the command line (``cli``) and the embedded default (``up``). See README.md for the map of the rooms.
"""
