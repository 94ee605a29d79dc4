// __NAME__ — a lattice actor in AssemblyScript: answers every HTTP request with a greeting naming the
// request. Uses the stock waPC guest packages: @wapc/as-guest (the waPC plumbing) and @wapc/as-msgpack.
// Build with `python build.py` (npm ci && npm run build); deploy with `lattice apply manifest.yaml --wait`.
import { handleCall, register, Result } from "@wapc/as-guest";
import { Decoder, Encoder, Sizer, Writer } from "@wapc/as-msgpack";

// The host calls wapc_init once after instantiation: register the operations this actor answers.
export function wapc_init(): void {
  register("HttpServer.HandleRequest", handleRequest);
}

export function __guest_call(operation_size: usize, payload_size: usize): bool {
  return handleCall(operation_size, payload_size);
}

function handleRequest(payload: ArrayBuffer): Result<ArrayBuffer> {
  // An HttpRequest is a msgpack map {method, path, queryString, header, body} (SPEC §2).
  const decoder = new Decoder(payload);
  let method = "";
  let path = "";
  let n = decoder.readMapSize();
  while (n-- > 0 && decoder.error() === null) {
    const key = decoder.readString();
    if (key == "method" && !decoder.isNextNil()) method = decoder.readString();
    else if (key == "path" && !decoder.isNextNil()) path = decoder.readString();
    else decoder.skip();
  }
  if (decoder.error() !== null) return Result.error<ArrayBuffer>(new Error("__NAME__: malformed HttpRequest"));
  const text = "Hello from __NAME__! You requested " + method + " " + path + "\n";
  return Result.ok(httpResponse(200, "text/plain; charset=utf-8", String.UTF8.encode(text)));
}

function writeResponse(writer: Writer, status: u16, contentType: string, body: ArrayBuffer): void {
  writer.writeMapSize(3);
  writer.writeString("statusCode");
  writer.writeUInt16(status);
  writer.writeString("header");
  writer.writeMapSize(1);
  writer.writeString("Content-Type");
  writer.writeArraySize(1);
  writer.writeString(contentType);
  writer.writeString("body");
  writer.writeByteArray(body);
}

/** An HttpResponse map: measured with a Sizer, then written with an Encoder. */
function httpResponse(status: u16, contentType: string, body: ArrayBuffer): ArrayBuffer {
  const sizer = new Sizer();
  writeResponse(sizer, status, contentType, body);
  const buffer = new ArrayBuffer(sizer.length);
  writeResponse(new Encoder(buffer), status, contentType, body);
  return buffer;
}
