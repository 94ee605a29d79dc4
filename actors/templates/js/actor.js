// __NAME__ — a lattice actor in JavaScript: answers every HTTP request with a greeting naming the request.
//
// A WebAssembly component (SPEC §7) built by componentize-js; lattice-actor.js turns its byte-level
// interface into JavaScript. Build with `python build.py`; deploy with `lattice apply manifest.yaml --wait`.

import { guest, http, Response } from "./lattice-actor.js";

export { guest };

http((request) => Response.text(`Hello from __NAME__! You requested ${request.method} ${request.path}\n`));
