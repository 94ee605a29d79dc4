"""The control plane: applications in, commands to hosts out (SPEC §5).

``model`` holds the plain data (manifests, observed hosts, desired components, commands), ``manifest``
parses wadm 0.x OAM documents into that model, and ``scheduler`` decides placement as a pure function of
desired and observed state. Nothing in those three modules touches NATS, HTTP or the clock; the
reconciler, the state store and the API execute what they decide.
"""
