//! __NAME__ — a lattice actor in Zig: answers every HTTP request with a greeting naming the request.
//!
//! sdk/lattice.zig is the SDK (msgpack, the four capability contracts, the waPC plumbing).
//! Build with `python build.py`; deploy with `lattice apply manifest.yaml --wait`.
const lattice = @import("lattice");

comptime {
    _ = lattice; // pulls in the SDK's waPC exports (__guest_call, wapc_init, ...)
}

/// The operations this actor answers, each with its handler.
pub const handlers = .{
    .{ "HttpServer.HandleRequest", handleRequest },
};

fn handleRequest(msg: []const u8, out: *lattice.Buf) !void {
    const req = lattice.http.parseRequest(msg) catch return lattice.fail("__NAME__: malformed HttpRequest");
    var body = lattice.Buf{};
    body.append("Hello from __NAME__! You requested ");
    body.append(req.method);
    body.append(" ");
    body.append(req.path);
    body.append("\n");
    try lattice.http.respond(out, 200, "text/plain; charset=utf-8", body.slice());
}
