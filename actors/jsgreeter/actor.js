// jsgreeter — a component actor in JavaScript (componentize-js) on lattice-actor.js.
//
// GET /<anything>?name=Ada answers {"greeting":"Hello, Ada!","visits":N,"actor":"jsgreeter"}, counting
// visits per name in the linked key-value store (wasmcloud:keyvalue over host.call, as the C actors do).
// Greeter.Greet answers another actor's msgpack string with a greeting.

import { ActorError, guest, handle, http, keyvalue, log } from "./lattice-actor.js";
import { decode, encode } from "@msgpack/msgpack";

export { guest };

http((request) => {
  const name = request.query.name?.[0] || "world";
  if (name.length > 64) throw new ActorError("jsgreeter: name too long");
  const visits = keyvalue.increment(`greeter:${name}`);
  log.info(`jsgreeter: ${name} -> ${visits}`);
  return { greeting: `Hello, ${name}!`, visits, actor: "jsgreeter" };
});

handle("Greeter.Greet", (payload) => encode(`Hello, ${decode(payload)}!`));
