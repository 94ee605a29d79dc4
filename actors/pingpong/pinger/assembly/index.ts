// pinger — pingpong's HTTP front: every request becomes a PingPong.Ping call to the ponger actor, made by
// its call alias "lattice/ponger" (SPEC §1: a host call whose namespace is an actor's id or call alias).
//
// GET /anything → 200 {"ping":"/anything","pong":"pong /anything"}; if the ponger cannot be reached,
// 502 {"error":"<the host's error text>"}.
//
// Written in AssemblyScript on the stock waPC guest packages (@wapc/as-guest, @wapc/as-msgpack): this is
// what a third-party waPC guest looks like, and it runs unmodified. Links: wasmcloud:httpserver only.
import { handleCall, hostCall, register, Result } from "@wapc/as-guest";
import { Decoder, Encoder, Sizer, Writer } from "@wapc/as-msgpack";

const PONGER = "lattice/ponger";

export function wapc_init(): void {
  register("HttpServer.HandleRequest", handleRequest);
}

export function __guest_call(operation_size: usize, payload_size: usize): bool {
  return handleCall(operation_size, payload_size);
}

export function __wasmbus_rpc_version(): i32 {
  return 1;
}

function handleRequest(payload: ArrayBuffer): Result<ArrayBuffer> {
  const path = requestPath(payload);
  if (path === null) return Result.error<ArrayBuffer>(new Error("pinger: malformed HttpRequest"));
  const reply = hostCall("", PONGER, "PingPong.Ping", encodeString(path));
  if (!reply.isOk) {
    const error = reply.error()!.message;
    return Result.ok(httpResponse(502, '{"error":' + jsonString(error) + "}"));
  }
  const decoder = new Decoder(reply.get());
  const pong = decoder.readString();
  if (decoder.error() !== null) {
    return Result.ok(httpResponse(502, '{"error":"malformed reply from the ponger"}'));
  }
  return Result.ok(httpResponse(200, '{"ping":' + jsonString(path) + ',"pong":' + jsonString(pong) + "}"));
}

/** The `path` of an HttpRequest map (SPEC §2), or null when the payload is not one. */
function requestPath(payload: ArrayBuffer): string | null {
  const decoder = new Decoder(payload);
  let path = "";
  let n = decoder.readMapSize();
  while (n-- > 0 && decoder.error() === null) {
    const key = decoder.readString();
    if (key == "path" && !decoder.isNextNil()) path = decoder.readString();
    else decoder.skip();
  }
  return decoder.error() === null ? path : null;
}

function encodeString(value: string): ArrayBuffer {
  const sizer = new Sizer();
  sizer.writeString(value);
  const buffer = new ArrayBuffer(sizer.length);
  new Encoder(buffer).writeString(value);
  return buffer;
}

function writeResponse(writer: Writer, status: u16, body: ArrayBuffer): void {
  writer.writeMapSize(3);
  writer.writeString("statusCode");
  writer.writeUInt16(status);
  writer.writeString("header");
  writer.writeMapSize(1);
  writer.writeString("Content-Type");
  writer.writeArraySize(1);
  writer.writeString("application/json");
  writer.writeString("body");
  writer.writeByteArray(body);
}

/** An HttpResponse map with a JSON body. */
function httpResponse(status: u16, json: string): ArrayBuffer {
  const body = String.UTF8.encode(json);
  const sizer = new Sizer();
  writeResponse(sizer, status, body);
  const buffer = new ArrayBuffer(sizer.length);
  writeResponse(new Encoder(buffer), status, body);
  return buffer;
}

/** A quoted JSON string: quotes, backslashes and control characters escaped. */
function jsonString(value: string): string {
  let out = '"';
  let start = 0; // copy runs of plain characters at once: concatenating one by one is quadratic
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c != 0x22 && c != 0x5c && c >= 0x20) continue;
    out += value.substring(start, i);
    if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += "\\" + String.fromCharCode(c);
    start = i + 1;
  }
  return out + value.substring(start) + '"';
}
