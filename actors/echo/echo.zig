//! echo — answers every HTTP request with JSON describing it:
//! {"method":"POST","path":"/x","queryString":"a=1","body":"..."} (the body as text).
//!
//! Written in Zig on the Zig guest SDK (actors/sdk/zig). Links: wasmcloud:httpserver only.
const lattice = @import("lattice");
comptime {
    _ = lattice;
}

pub const handlers = .{
    .{ "HttpServer.HandleRequest", handleRequest },
};

fn handleRequest(msg: []const u8, out: *lattice.Buf) !void {
    const req = lattice.http.parseRequest(msg) catch return lattice.fail("echo: malformed HttpRequest");
    var json = lattice.Buf{};
    json.append("{\"method\":");
    json.appendJsonStr(req.method);
    json.append(",\"path\":");
    json.appendJsonStr(req.path);
    json.append(",\"queryString\":");
    json.appendJsonStr(req.query_string);
    json.append(",\"body\":");
    json.appendJsonStr(req.body);
    json.append("}");
    try lattice.http.respond(out, 200, "application/json", json.slice());
}
