"""__NAME__ — a lattice actor in Python: answers every HTTP request with a greeting naming the request.

A WebAssembly component (SPEC §7) built by componentize-py; ``lattice_actor`` (shipped with lattice, added
at build time) turns its byte-level interface into Python. Build with ``python build.py``; deploy with
``lattice apply manifest.yaml --wait``.
"""

from lattice_actor import Guest, HttpRequest, HttpResponse, http

__all__ = ["Guest"]  # componentize-py looks for the export here


@http
def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(f"Hello from __NAME__! You requested {request.method} {request.path}\n")
