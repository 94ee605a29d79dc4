//! lattice.zig — the guest-side Zig SDK for lattice actors (waPC guests, SPEC §1 and §2).
//!
//! The Zig twin of the C SDK (`../lattice.h`): the same exports, the same per-call arena and the same
//! error texts, so a host cannot tell them apart. Build with
//! `zig build-exe -target wasm32-freestanding -fno-entry -rdynamic --dep lattice -Mroot=actor.zig
//! -Mlattice=sdk/zig/lattice.zig` (see actors/build.py). An actor lists its handlers in `handlers`:
//!
//!     const lattice = @import("lattice");
//!
//!     pub const handlers = .{.{ "HttpServer.HandleRequest", handle }};
//!
//!     fn handle(msg: []const u8, out: *lattice.Buf) !void {
//!         _ = msg;
//!         try lattice.http.respond(out, 200, "text/plain", "hi");
//!     }
//!
//! A handler reads the request payload `msg`, writes its msgpack reply into `out` and returns; to fail the
//! call it returns `lattice.fail(text)`, which hands `text` to the host through `__guest_error`. A failed
//! host call that is `try`-ed fails the call with the host's error text; any other error with its name.
//!
//! Memory: everything allocated while a call runs lives in an arena above the module's initial memory that
//! is reset when the next call starts, so handlers never free. If any buffer runs out of memory (the host's
//! limit), the call fails with "actor out of memory ..." instead of sending a truncated reply.
const std = @import("std");
const root = @import("root");

pub const msgpack = @import("msgpack.zig");
pub const http = @import("contracts.zig").http;
pub const keyvalue = @import("contracts.zig").keyvalue;
/// KeyValue.List* and KeyValue.Set* (the `keyvalue` contract's lists and sets).
pub const lists = @import("contracts.zig").lists;
pub const sets = @import("contracts.zig").sets;
pub const logging = @import("contracts.zig").logging;
pub const numbergen = @import("contracts.zig").numbergen;

// ---- host imports (SPEC §1; module `wapc`) ------------------------------------------------------------

extern "wapc" fn __guest_request(op: [*]u8, msg: [*]u8) void;
extern "wapc" fn __guest_response(ptr: [*]const u8, len: usize) void;
extern "wapc" fn __guest_error(ptr: [*]const u8, len: usize) void;
extern "wapc" fn __host_call(
    bd: [*]const u8,
    bd_len: usize,
    ns: [*]const u8,
    ns_len: usize,
    op: [*]const u8,
    op_len: usize,
    ptr: [*]const u8,
    len: usize,
) i32;
extern "wapc" fn __host_response_len() usize;
extern "wapc" fn __host_response(ptr: [*]u8) void;
extern "wapc" fn __host_error_len() usize;
extern "wapc" fn __host_error(ptr: [*]u8) void;
extern "wapc" fn __console_log(ptr: [*]const u8, len: usize) void;

// ---- arena ----------------------------------------------------------------------------------------------

const page_size = 65536;
var arena_floor: usize = 0; // the module's initial memory ends here; the arena starts here
var arena_top: usize = 0;
var call_oom = false;

/// Arena allocation for the current call; null when memory cannot grow.
pub fn alloc(n: usize) ?[*]u8 {
    const start = std.mem.alignForward(usize, arena_top, 8);
    if (n > std.math.maxInt(usize) - start) return null;
    const end = start + n;
    const limit: u64 = @as(u64, @wasmMemorySize(0)) * page_size;
    if (end > limit) {
        const pages: usize = @intCast((end - limit + page_size - 1) / page_size);
        if (@wasmMemoryGrow(0, pages) < 0) return null;
    }
    arena_top = end;
    return @ptrFromInt(start);
}

/// A growable byte buffer in the call arena; start one as `var b = lattice.Buf{};`. `oom` latches on
/// allocation failure, so writers can be chained and the call still fails as a whole.
pub const Buf = struct {
    ptr: [*]u8 = undefined,
    len: usize = 0,
    cap: usize = 0,
    oom: bool = false,

    pub fn slice(b: *const Buf) []const u8 {
        return if (b.len == 0) "" else b.ptr[0..b.len];
    }

    fn outOfMemory(b: *Buf) bool {
        b.oom = true;
        call_oom = true;
        return false;
    }

    fn reserve(b: *Buf, extra: usize) bool {
        if (b.oom) return false;
        if (extra <= b.cap - b.len) return true;
        var cap: usize = if (b.cap == 0) 64 else b.cap;
        while (cap - b.len < extra) {
            if (cap > std.math.maxInt(usize) / 2) return b.outOfMemory();
            cap *= 2;
        }
        if (b.cap != 0 and @intFromPtr(b.ptr) + b.cap == arena_top) {
            // The buffer is the newest block: grow it in place.
            arena_top = @intFromPtr(b.ptr);
            if (alloc(cap) == null) {
                arena_top = @intFromPtr(b.ptr) + b.cap;
                return b.outOfMemory();
            }
        } else {
            const p = alloc(cap) orelse return b.outOfMemory();
            if (b.len != 0) @memcpy(p[0..b.len], b.ptr[0..b.len]);
            b.ptr = p;
        }
        b.cap = cap;
        return true;
    }

    pub fn append(b: *Buf, bytes: []const u8) void {
        if (!b.reserve(bytes.len)) return;
        @memcpy(b.ptr[b.len..][0..bytes.len], bytes);
        b.len += bytes.len;
    }

    pub fn appendByte(b: *Buf, c: u8) void {
        b.append(&[_]u8{c});
    }

    /// Decimal text.
    pub fn appendInt(b: *Buf, v: i64) void {
        var tmp: [20]u8 = undefined;
        var i: usize = tmp.len;
        var u: u64 = @abs(v);
        while (true) {
            i -= 1;
            tmp[i] = '0' + @as(u8, @intCast(u % 10));
            u /= 10;
            if (u == 0) break;
        }
        if (v < 0) b.appendByte('-');
        b.append(tmp[i..]);
    }

    /// A quoted, escaped JSON string; bytes >= 0x80 pass through (UTF-8 in, UTF-8 out).
    pub fn appendJsonStr(b: *Buf, s: []const u8) void {
        const hex = "0123456789abcdef";
        b.appendByte('"');
        for (s) |c| {
            if (c == '"' or c == '\\') {
                b.append(&[_]u8{ '\\', c });
            } else if (c < 0x20) {
                b.append(&[_]u8{ '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] });
            } else {
                b.appendByte(c);
            }
        }
        b.appendByte('"');
    }
};

// ---- errors and host calls ------------------------------------------------------------------------------

pub const Error = error{
    /// the handler called `fail(text)`
    Failed,
    /// a host call returned 0; `lastError()` holds the host's text
    HostCall,
    /// a msgpack value was truncated or of the wrong type
    Malformed,
    OutOfMemory,
};

var call_error: []const u8 = "";
var last_error: []const u8 = "";

/// Fails the current call with `text`: `return lattice.fail("bad input");`.
pub fn fail(text: []const u8) error{Failed} {
    call_error = text;
    return error.Failed;
}

/// The host's error text after a failed host call.
pub fn lastError() []const u8 {
    return last_error;
}

/// Records `text` as lastError() for helpers that reject a host's reply.
pub fn setLastError(text: []const u8) error{HostCall} {
    last_error = text;
    return error.HostCall;
}

/// A line in the host's own log (`__console_log`), no link needed.
pub fn log(text: []const u8) void {
    __console_log(text.ptr, text.len);
}

/// Raw host call: the msgpack reply, or error.HostCall with lastError() set. `binding` "" = `default`.
pub fn hostCall(binding: []const u8, namespace: []const u8, operation: []const u8, payload: []const u8) Error![]const u8 {
    const ok = __host_call(binding.ptr, binding.len, namespace.ptr, namespace.len, operation.ptr, operation.len, payload.ptr, payload.len);
    if (ok != 1) {
        const len = __host_error_len();
        const p = alloc(len) orelse return setLastError("actor out of memory reading a host error");
        __host_error(p);
        return setLastError(p[0..len]);
    }
    const len = __host_response_len();
    const p = alloc(len) orelse return setLastError("actor out of memory reading a host reply");
    __host_response(p);
    return p[0..len];
}

// ---- exports --------------------------------------------------------------------------------------------

fn guestFail(text: []const u8) i32 {
    __guest_error(text.ptr, text.len);
    return 0;
}

fn run(handler: anytype, msg: []const u8) i32 {
    var out = Buf{};
    if (handler(msg, &out)) |_| {
        if (!call_oom) {
            __guest_response(out.ptr, out.len);
            return 1;
        }
        return guestFail("actor out of memory building the reply");
    } else |err| {
        if (call_error.len != 0) return guestFail(call_error); // the handler's own words first
        if (call_oom or err == error.OutOfMemory) return guestFail("actor out of memory building the reply");
        if (err == error.HostCall) return guestFail(last_error);
        var text = Buf{};
        text.append("operation failed: ");
        text.append(@errorName(err));
        return guestFail(if (text.oom) "operation failed" else text.slice());
    }
}

export fn __guest_call(op_len: usize, msg_len: usize) i32 {
    if (arena_floor == 0) arena_floor = @wasmMemorySize(0) * page_size;
    arena_top = arena_floor;
    call_error = "";
    last_error = "";
    call_oom = false;
    const op = alloc(op_len) orelse return guestFail("actor out of memory reading the request");
    const msg = alloc(msg_len) orelse return guestFail("actor out of memory reading the request");
    __guest_request(op, msg);
    const operation = op[0..op_len];
    inline for (root.handlers) |h| {
        if (std.mem.eql(u8, operation, h[0])) return run(h[1], msg[0..msg_len]);
    }
    var text = Buf{};
    text.append("actor has no handler for operation ");
    text.append(operation);
    return guestFail(if (text.oom) "no handler for operation" else text.slice());
}

/// Handlers are known at compile time, so there is nothing to set up; exported for hosts that expect it.
export fn wapc_init() void {}

export fn __wasmbus_rpc_version() i32 {
    return 1;
}
