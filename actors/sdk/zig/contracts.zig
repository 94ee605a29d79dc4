//! contracts.zig — typed helpers for the capability contracts of SPEC §2, with their exact msgpack keys.
//!
//! Host-call helpers return error.HostCall with `lattice.lastError()` holding the host's text (or a note
//! that the reply was malformed). `binding` is the link name; "" means the `default` link.
const std = @import("std");
const lattice = @import("lattice.zig");
const mp = @import("msgpack.zig");
const Buf = lattice.Buf;
const Error = lattice.Error;

/// Sends `payload` and hands back a reader over the reply.
fn call(binding: []const u8, ns: []const u8, op: []const u8, payload: *const Buf) Error!mp.Reader {
    if (payload.oom) return lattice.setLastError("actor out of memory encoding a host call");
    return mp.Reader.init(try lattice.hostCall(binding, ns, op, payload.slice()));
}

fn malformed() error{HostCall} {
    return lattice.setLastError("malformed reply from the host");
}

/// A str value where nil also means "empty".
fn readText(r: *mp.Reader) mp.Malformed![]const u8 {
    return if (r.readNil()) "" else r.readStr();
}

pub const http = struct {
    pub const ns = "wasmcloud:httpserver";

    pub const Request = struct {
        method: []const u8 = "",
        path: []const u8 = "",
        query_string: []const u8 = "",
        /// the raw msgpack map {str: [str]}; use `header()`
        header_map: []const u8 = "",
        body: []const u8 = "",

        /// First value of header `name` (ASCII case-insensitive), or null.
        pub fn header(req: *const Request, name: []const u8) ?[]const u8 {
            if (req.header_map.len == 0) return null;
            var r = mp.Reader.init(req.header_map);
            var n = r.readMap() catch return null;
            while (n > 0) : (n -= 1) {
                const key = r.readStr() catch return null;
                if (std.ascii.eqlIgnoreCase(key, name)) {
                    const count = r.readArray() catch return null;
                    return if (count == 0) null else r.readStr() catch null;
                }
                r.skip() catch return null;
            }
            return null;
        }
    };

    pub const Header = struct { name: []const u8, value: []const u8 };

    /// Decodes an HttpRequest map; unknown keys are skipped and missing ones stay empty.
    pub fn parseRequest(msg: []const u8) mp.Malformed!Request {
        var req = Request{};
        var r = mp.Reader.init(msg);
        var n = try r.readMap();
        while (n > 0) : (n -= 1) {
            const key = try r.readStr();
            if (std.mem.eql(u8, key, "method")) {
                req.method = try readText(&r);
            } else if (std.mem.eql(u8, key, "path")) {
                req.path = try readText(&r);
            } else if (std.mem.eql(u8, key, "queryString")) {
                req.query_string = try readText(&r);
            } else if (std.mem.eql(u8, key, "body")) {
                req.body = try readText(&r);
            } else if (std.mem.eql(u8, key, "header")) {
                const start = r.pos;
                try r.skip();
                req.header_map = msg[start..r.pos];
            } else {
                try r.skip();
            }
        }
        return req;
    }

    /// Writes an HttpResponse map {statusCode, header: {name: [value]}, body}.
    pub fn writeResponse(out: *Buf, status: u16, headers: []const Header, body: []const u8) error{OutOfMemory}!void {
        mp.writeMap(out, 3);
        mp.writeStr(out, "statusCode");
        mp.writeInt(out, status);
        mp.writeStr(out, "header");
        mp.writeMap(out, @intCast(headers.len));
        for (headers) |h| {
            mp.writeStr(out, h.name);
            mp.writeArray(out, 1);
            mp.writeStr(out, h.value);
        }
        mp.writeStr(out, "body");
        mp.writeBin(out, body);
        if (out.oom) return error.OutOfMemory;
    }

    /// The common case: one Content-Type header.
    pub fn respond(out: *Buf, status: u16, content_type: []const u8, body: []const u8) error{OutOfMemory}!void {
        return writeResponse(out, status, &.{.{ .name = "Content-Type", .value = content_type }}, body);
    }
};

pub const keyvalue = struct {
    pub const ns = "wasmcloud:keyvalue";

    fn keyPayload(key: []const u8) Buf {
        var p = Buf{};
        mp.writeStr(&p, key);
        return p;
    }

    fn callBool(binding: []const u8, op: []const u8, p: *const Buf) Error!bool {
        var r = try call(binding, ns, op, p);
        return r.readBool() catch malformed();
    }

    /// The value, or null when the key does not exist.
    pub fn get(binding: []const u8, key: []const u8) Error!?[]const u8 {
        var r = try call(binding, ns, "KeyValue.Get", &keyPayload(key));
        var value: []const u8 = "";
        var exists = false;
        var n = r.readMap() catch return malformed();
        while (n > 0) : (n -= 1) {
            const k = r.readStr() catch return malformed();
            if (std.mem.eql(u8, k, "value")) {
                value = readText(&r) catch return malformed();
            } else if (std.mem.eql(u8, k, "exists")) {
                exists = r.readBool() catch return malformed();
            } else {
                r.skip() catch return malformed();
            }
        }
        return if (exists) value else null;
    }

    /// `expires_s` 0 = never.
    pub fn set(binding: []const u8, key: []const u8, value: []const u8, expires_s: u32) Error!void {
        var p = Buf{};
        mp.writeMap(&p, 3);
        mp.writeStr(&p, "key");
        mp.writeStr(&p, key);
        mp.writeStr(&p, "value");
        mp.writeStr(&p, value);
        mp.writeStr(&p, "expires");
        mp.writeInt(&p, expires_s);
        _ = try call(binding, ns, "KeyValue.Set", &p);
    }

    /// Whether the key existed.
    pub fn del(binding: []const u8, key: []const u8) Error!bool {
        return callBool(binding, "KeyValue.Del", &keyPayload(key));
    }

    pub fn contains(binding: []const u8, key: []const u8) Error!bool {
        return callBool(binding, "KeyValue.Contains", &keyPayload(key));
    }

    /// The new value, atomically.
    pub fn increment(binding: []const u8, key: []const u8, by: i32) Error!i32 {
        var p = Buf{};
        mp.writeMap(&p, 2);
        mp.writeStr(&p, "key");
        mp.writeStr(&p, key);
        mp.writeStr(&p, "value");
        mp.writeInt(&p, by);
        var r = try call(binding, ns, "KeyValue.Increment", &p);
        const v = r.readInt() catch return malformed();
        return std.math.cast(i32, v) orelse malformed();
    }
};

/// Strings decoded from a host reply (ListRange, SetQuery, ...), in the call arena.
fn readStrings(r: *mp.Reader) Error![]const []const u8 {
    const n = r.readArray() catch return malformed();
    // Each item takes at least one byte: a count beyond the reply is malformed, not an allocation.
    if (n > r.bytes.len - r.pos) return malformed();
    if (n == 0) return &.{};
    const raw = lattice.alloc(@as(usize, n) * @sizeOf([]const u8)) orelse
        return lattice.setLastError("actor out of memory reading a host reply");
    const items: [*][]const u8 = @ptrCast(@alignCast(raw));
    for (items[0..n]) |*item| item.* = readText(r) catch return malformed();
    return items[0..n];
}

pub const lists = struct {
    fn nameValue(list: []const u8, value: []const u8) Buf {
        var p = Buf{};
        mp.writeMap(&p, 2);
        mp.writeStr(&p, "listName");
        mp.writeStr(&p, list);
        mp.writeStr(&p, "value");
        mp.writeStr(&p, value);
        return p;
    }

    /// Appends `value`; the list's new length.
    pub fn add(binding: []const u8, list: []const u8, value: []const u8) Error!u32 {
        var r = try call(binding, keyvalue.ns, "KeyValue.ListAdd", &nameValue(list, value));
        return std.math.cast(u32, r.readInt() catch return malformed()) orelse malformed();
    }

    /// Removes `value`; whether it was there.
    pub fn del(binding: []const u8, list: []const u8, value: []const u8) Error!bool {
        var r = try call(binding, keyvalue.ns, "KeyValue.ListDel", &nameValue(list, value));
        return r.readBool() catch malformed();
    }

    /// Items `start` to `stop`, inclusive; negative indexes count from the end (Redis).
    pub fn range(binding: []const u8, list: []const u8, start: i32, stop: i32) Error![]const []const u8 {
        var p = Buf{};
        mp.writeMap(&p, 3);
        mp.writeStr(&p, "listName");
        mp.writeStr(&p, list);
        mp.writeStr(&p, "start");
        mp.writeInt(&p, start);
        mp.writeStr(&p, "stop");
        mp.writeInt(&p, stop);
        var r = try call(binding, keyvalue.ns, "KeyValue.ListRange", &p);
        return readStrings(&r);
    }

    pub fn clear(binding: []const u8, list: []const u8) Error!bool {
        return keyvalue.callBool(binding, "KeyValue.ListClear", &keyvalue.keyPayload(list));
    }
};

pub const sets = struct {
    fn nameValue(set: []const u8, value: []const u8) Buf {
        var p = Buf{};
        mp.writeMap(&p, 2);
        mp.writeStr(&p, "setName");
        mp.writeStr(&p, set);
        mp.writeStr(&p, "value");
        mp.writeStr(&p, value);
        return p;
    }

    fn callU32(binding: []const u8, op: []const u8, p: *const Buf) Error!u32 {
        var r = try call(binding, keyvalue.ns, op, p);
        return std.math.cast(u32, r.readInt() catch return malformed()) orelse malformed();
    }

    /// The set's new size.
    pub fn add(binding: []const u8, set: []const u8, value: []const u8) Error!u32 {
        return callU32(binding, "KeyValue.SetAdd", &nameValue(set, value));
    }

    /// How many members were removed (0 or 1).
    pub fn del(binding: []const u8, set: []const u8, value: []const u8) Error!u32 {
        return callU32(binding, "KeyValue.SetDel", &nameValue(set, value));
    }

    pub fn query(binding: []const u8, set: []const u8) Error![]const []const u8 {
        var r = try call(binding, keyvalue.ns, "KeyValue.SetQuery", &keyvalue.keyPayload(set));
        return readStrings(&r);
    }

    fn combine(binding: []const u8, op: []const u8, names: []const []const u8) Error![]const []const u8 {
        var p = Buf{};
        mp.writeArray(&p, @intCast(names.len));
        for (names) |name| mp.writeStr(&p, name);
        var r = try call(binding, keyvalue.ns, op, &p);
        return readStrings(&r);
    }

    pub fn intersection(binding: []const u8, names: []const []const u8) Error![]const []const u8 {
        return combine(binding, "KeyValue.SetIntersection", names);
    }

    pub fn @"union"(binding: []const u8, names: []const []const u8) Error![]const []const u8 {
        return combine(binding, "KeyValue.SetUnion", names);
    }

    pub fn clear(binding: []const u8, set: []const u8) Error!bool {
        return keyvalue.callBool(binding, "KeyValue.SetClear", &keyvalue.keyPayload(set));
    }
};

pub const logging = struct {
    pub const ns = "wasmcloud:builtin:logging";

    /// level: "debug" | "info" | "warn" | "error". Fails like any host call when no logger is linked.
    pub fn writeLog(level: []const u8, text: []const u8) Error!void {
        var p = Buf{};
        mp.writeMap(&p, 2);
        mp.writeStr(&p, "level");
        mp.writeStr(&p, level);
        mp.writeStr(&p, "text");
        mp.writeStr(&p, text);
        _ = try call("", ns, "Logging.WriteLog", &p);
    }
};

pub const numbergen = struct {
    pub const ns = "wasmcloud:builtin:numbergen";

    pub fn guid() Error![]const u8 {
        var r = try call("", ns, "NumberGen.GenerateGuid", &Buf{});
        return r.readStr() catch malformed();
    }

    pub fn random32() Error!u32 {
        var r = try call("", ns, "NumberGen.Random32", &Buf{});
        return std.math.cast(u32, r.readInt() catch return malformed()) orelse malformed();
    }

    pub fn randomInRange(min: u32, max: u32) Error!u32 {
        var p = Buf{};
        mp.writeMap(&p, 2);
        mp.writeStr(&p, "min");
        mp.writeInt(&p, min);
        mp.writeStr(&p, "max");
        mp.writeInt(&p, max);
        var r = try call("", ns, "NumberGen.RandomInRange", &p);
        return std.math.cast(u32, r.readInt() catch return malformed()) orelse malformed();
    }
};
