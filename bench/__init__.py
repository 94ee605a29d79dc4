"""Benchmarks: ``python -m bench`` measures lattice against its peers in one run (issue 7).

Each scenario is its own module and returns flat ``{key: number}`` results:

    micro.py      in process: bare wasmtime-py vs our ActorPool (instantiate, call); idle memory
    nats.py       raw nats-py request/reply vs an actor invoked over NATS in another host process
    http.py       plain uvicorn vs HTTP → httpserver provider → actor (provider in the host, or remote)
    lifecycle.py  cold start (PUT /v1/applications → first 200) and failover after ``kill -9``
    peers.py      ``wasmtime serve`` and wasmCloud ``wash`` serving a small hello component
    wasi_http.py  wasi:http components (the peers' hello, a componentize-py hello) served by lattice
    componentize.py  builds componentize-py wasi:http components once, cached by content hash
    cluster.py    the lattice processes the scenarios run against (nats-server, control plane, hosts)
    loadgen.py    HTTP load: ``wrk`` when installed, else an in-repo asyncio generator
    report.py     the table and the JSON files under ``bench/results/``

Nothing here changes lattice; every process a scenario starts is stopped in a ``finally``.
"""
