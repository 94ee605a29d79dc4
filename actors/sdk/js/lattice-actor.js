// lattice-actor.js: write a lattice actor in JavaScript (a component, built with componentize-js).
//
// The guest side of SPEC §7: `guest.handle` (export it from your actor) dispatches to the handlers you
// register; `call` is `lattice:actor/host.call`. Payloads of the SPEC §2 contracts are msgpack
// (@msgpack/msgpack, bundled by esbuild).
//
//   import { guest, http, keyvalue, log } from "./lattice-actor.js";
//   export { guest };
//   http((request) => ({ path: request.path, count: keyvalue.increment(`counter:${request.path}`) }));
//
// A handler that throws fails the call: an ActorError with its message as it is, anything else as
// "<Name>: <message>". A failed host call throws HostCallError carrying the host's text.

import { call as hostCall } from "lattice:actor/host@0.1.0";
import { decode, encode } from "@msgpack/msgpack";

export class ActorError extends Error {
  constructor(message) {
    super(message);
    this.name = "ActorError";
  }
}

export class HostCallError extends ActorError {
  constructor(namespace, operation, text) {
    super(text);
    this.name = "HostCallError";
    this.namespace = namespace;
    this.operation = operation;
  }
}

const handlers = new Map();
export const HTTP_OPERATION = "HttpServer.HandleRequest";

/** Registers `fn(payload: Uint8Array) => Uint8Array` for `operation` ("Service.Method"). */
export function handle(operation, fn) {
  handlers.set(operation, fn);
}

/** Registers `fn(request) => response` for HTTP; the response may be a Response, string, bytes or JSON. */
export function http(fn) {
  handlers.set(HTTP_OPERATION, (payload) => Response.of(fn(Request.decode(payload))).encode());
}

/** The export componentize-js binds to `lattice:actor/guest`: export it from the actor module. */
export const guest = {
  handle(operation, payload) {
    const fn = handlers.get(operation);
    // componentize-js turns a thrown string into the call's `err`; anything else would trap.
    if (fn === undefined) throw `actor has no handler for operation ${operation}`;
    try {
      return fn(payload);
    } catch (error) {
      if (error instanceof ActorError) throw error.message;
      throw `${error?.name ?? "Error"}: ${error?.message ?? String(error)}`;
    }
  },
};

// ---- calls out -------------------------------------------------------------------------------------

/** Calls a contract (linked under `link`, "" = default) or an actor; bytes in, bytes out. */
export function call(namespace, operation, payload = new Uint8Array(), link = "") {
  try {
    return hostCall(link, namespace, operation, payload);
  } catch (error) {
    throw new HostCallError(namespace, operation, String(error?.payload ?? error));
  }
}

/** `call` with msgpack values both ways (undefined for an empty answer). */
export function callValue(namespace, operation, value, link = "") {
  const answer = call(namespace, operation, value === undefined ? new Uint8Array() : encode(value), link);
  return answer.length ? decode(answer) : undefined;
}

/** Calls another actor by id (M…) or call alias with a msgpack value. */
export function callActor(target, operation, value) {
  return callValue(target, operation, value);
}

export const keyvalue = {
  get(key, link = "") {
    const answer = callValue("wasmcloud:keyvalue", "KeyValue.Get", key, link);
    return answer?.exists ? answer.value : undefined;
  },
  set(key, value, expires = 0, link = "") {
    callValue("wasmcloud:keyvalue", "KeyValue.Set", { key, value, expires }, link);
  },
  delete(key, link = "") {
    return Boolean(callValue("wasmcloud:keyvalue", "KeyValue.Del", key, link));
  },
  contains(key, link = "") {
    return Boolean(callValue("wasmcloud:keyvalue", "KeyValue.Contains", key, link));
  },
  increment(key, by = 1, link = "") {
    return Number(callValue("wasmcloud:keyvalue", "KeyValue.Increment", { key, value: by }, link));
  },
};

function writeLog(level, text) {
  try {
    callValue("wasmcloud:builtin:logging", "Logging.WriteLog", { level, text });
    return true;
  } catch (error) {
    if (error instanceof HostCallError) return false; // no logging link: a log line never fails a call
    throw error;
  }
}

export const log = {
  debug: (text) => writeLog("debug", text),
  info: (text) => writeLog("info", text),
  warn: (text) => writeLog("warn", text),
  error: (text) => writeLog("error", text),
};

// ---- HTTP (SPEC §2 HttpRequest / HttpResponse) -----------------------------------------------------

const utf8 = new TextDecoder();
const toBytes = (text) => new TextEncoder().encode(text);

export class Request {
  constructor(method, path, queryString, headers, body) {
    Object.assign(this, { method, path, queryString, headers, body });
  }

  static decode(payload) {
    let m;
    try {
      m = decode(payload);
    } catch (error) {
      throw new ActorError(`malformed HttpRequest: ${error.message}`);
    }
    if (typeof m?.method !== "string" || typeof m?.path !== "string") {
      throw new ActorError("malformed HttpRequest: want a map with method and path");
    }
    const headers = {};
    for (const [name, values] of Object.entries(m.header ?? {})) {
      headers[name.toLowerCase()] = Array.isArray(values) ? values.map(String) : [String(values)];
    }
    const body = typeof m.body === "string" ? toBytes(m.body) : (m.body ?? new Uint8Array());
    return new Request(m.method, m.path, m.queryString ?? "", headers, body);
  }

  header(name) {
    return this.headers[name.toLowerCase()]?.[0];
  }

  get query() {
    const query = {};
    for (const part of this.queryString.split("&").filter(Boolean)) {
      const [key, value = ""] = part.split("=").map((s) => decodeURIComponent(s.replace(/\+/g, " ")));
      (query[key] ??= []).push(value);
    }
    return query;
  }

  text() {
    return utf8.decode(this.body);
  }

  json() {
    try {
      return JSON.parse(this.text() || "null");
    } catch (error) {
      throw new ActorError(`request body is not JSON: ${error.message}`);
    }
  }
}

export class Response {
  constructor(status = 200, headers = {}, body = new Uint8Array()) {
    Object.assign(this, { status, headers, body });
  }

  static text(text, status = 200) {
    return new Response(status, { "content-type": ["text/plain; charset=utf-8"] }, toBytes(text));
  }

  static json(value, status = 200) {
    return new Response(status, { "content-type": ["application/json"] }, toBytes(JSON.stringify(value)));
  }

  static of(value) {
    if (value instanceof Response) return value;
    if (typeof value === "string") return Response.text(value);
    if (value instanceof Uint8Array) return new Response(200, { "content-type": ["application/octet-stream"] }, value);
    if (value === undefined || value === null) return new Response(204);
    return Response.json(value);
  }

  encode() {
    return encode({ statusCode: this.status, header: this.headers, body: this.body });
  }
}
