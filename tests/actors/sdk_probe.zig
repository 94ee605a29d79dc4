//! sdk_probe.zig — the Zig SDK's twin of sdk_probe.c: every helper exposed as a `Probe.*` operation with the
//! same arguments and results, so test_sdk.py runs the same tests against both SDKs.
const std = @import("std");
const lattice = @import("lattice");
const mp = lattice.msgpack;
const Buf = lattice.Buf;

comptime {
    _ = lattice;
}

pub const handlers = .{
    .{ "Probe.Roundtrip", roundtrip },
    .{ "Probe.Skip", skip },
    .{ "Probe.HttpRequest", httpRequest },
    .{ "Probe.KvGet", kvGet },
    .{ "Probe.KvSet", kvSet },
    .{ "Probe.KvDel", kvDel },
    .{ "Probe.KvContains", kvContains },
    .{ "Probe.KvIncrement", kvIncrement },
    .{ "Probe.KvListAdd", kvListAdd },
    .{ "Probe.KvListDel", kvListDel },
    .{ "Probe.KvListRange", kvListRange },
    .{ "Probe.KvListClear", kvListClear },
    .{ "Probe.KvSetAdd", kvSetAdd },
    .{ "Probe.KvSetDel", kvSetDel },
    .{ "Probe.KvSetQuery", kvSetQuery },
    .{ "Probe.KvSetClear", kvSetClear },
    .{ "Probe.KvSetCombine", kvSetCombine },
    .{ "Probe.Log", log },
    .{ "Probe.Guid", guid },
    .{ "Probe.Random32", random32 },
    .{ "Probe.RandomInRange", randomInRange },
    .{ "Probe.Console", console },
};

/// Opens the argument array; a bad shape fails the call.
fn args(msg: []const u8, want: u32) !mp.Reader {
    var r = mp.Reader.init(msg);
    if ((r.readArray() catch 0) != want) return lattice.fail("probe: bad arguments");
    return r;
}

fn copyValue(r: *mp.Reader, out: *Buf) !void {
    if (r.pos >= r.bytes.len) return error.Malformed;
    const tag = r.bytes[r.pos];
    if (r.readNil()) return mp.writeNil(out);
    switch (tag) {
        0xa0...0xbf, 0xd9...0xdb => mp.writeStr(out, try r.readStr()),
        0xc4...0xc6 => mp.writeBin(out, try r.readBin()),
        0xc2, 0xc3 => mp.writeBool(out, try r.readBool()),
        0x90...0x9f, 0xdc, 0xdd => {
            const n = try r.readArray();
            mp.writeArray(out, n);
            for (0..n) |_| try copyValue(r, out);
        },
        0x80...0x8f, 0xde, 0xdf => {
            const n = try r.readMap();
            mp.writeMap(out, n);
            for (0..n) |_| {
                try copyValue(r, out);
                try copyValue(r, out);
            }
        },
        else => mp.writeInt(out, try r.readInt()),
    }
}

fn roundtrip(msg: []const u8, out: *Buf) !void {
    var r = mp.Reader.init(msg);
    copyValue(&r, out) catch return lattice.fail("probe: cannot copy value");
    if (!r.done()) return lattice.fail("probe: cannot copy value");
}

fn skip(msg: []const u8, out: *Buf) !void {
    var r = mp.Reader.init(msg);
    r.skip() catch return lattice.fail("probe: cannot skip value");
    out.append(msg[r.pos..]);
}

fn httpRequest(msg: []const u8, out: *Buf) !void {
    const req = lattice.http.parseRequest(msg) catch return lattice.fail("probe: malformed HttpRequest");
    mp.writeArray(out, 5);
    mp.writeStr(out, req.method);
    mp.writeStr(out, req.path);
    mp.writeStr(out, req.query_string);
    mp.writeBin(out, req.body);
    if (req.header("content-type")) |ct| mp.writeStr(out, ct) else mp.writeNil(out);
}

fn writeStrings(out: *Buf, items: []const []const u8) void {
    mp.writeArray(out, @intCast(items.len));
    for (items) |item| mp.writeStr(out, item);
}

fn kvGet(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    const value = try lattice.keyvalue.get("", try r.readStr());
    mp.writeArray(out, 2);
    mp.writeStr(out, value orelse "");
    mp.writeBool(out, value != null);
}

fn kvSet(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 3);
    const key = try r.readStr();
    const value = try r.readStr();
    try lattice.keyvalue.set("", key, value, @intCast(try r.readInt()));
    mp.writeNil(out);
}

fn kvDel(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    mp.writeBool(out, try lattice.keyvalue.del("", try r.readStr()));
}

fn kvContains(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    mp.writeBool(out, try lattice.keyvalue.contains("", try r.readStr()));
}

/// [binding, key, by]: the binding is passed through, to pin down named links.
fn kvIncrement(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 3);
    const binding = try r.readStr();
    const key = try r.readStr();
    mp.writeInt(out, try lattice.keyvalue.increment(binding, key, @intCast(try r.readInt())));
}

fn kvListAdd(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const list = try r.readStr();
    mp.writeInt(out, try lattice.lists.add("", list, try r.readStr()));
}

fn kvListDel(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const list = try r.readStr();
    mp.writeBool(out, try lattice.lists.del("", list, try r.readStr()));
}

fn kvListRange(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 3);
    const list = try r.readStr();
    const start: i32 = @intCast(try r.readInt());
    writeStrings(out, try lattice.lists.range("", list, start, @intCast(try r.readInt())));
}

fn kvListClear(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    mp.writeBool(out, try lattice.lists.clear("", try r.readStr()));
}

fn kvSetAdd(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const set = try r.readStr();
    mp.writeInt(out, try lattice.sets.add("", set, try r.readStr()));
}

fn kvSetDel(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const set = try r.readStr();
    mp.writeInt(out, try lattice.sets.del("", set, try r.readStr()));
}

fn kvSetQuery(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    writeStrings(out, try lattice.sets.query("", try r.readStr()));
}

fn kvSetClear(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 1);
    mp.writeBool(out, try lattice.sets.clear("", try r.readStr()));
}

/// [union?, [set, ...]]
fn kvSetCombine(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const is_union = try r.readBool();
    const n = try r.readArray();
    const raw = lattice.alloc(@as(usize, n) * @sizeOf([]const u8) + 1) orelse return error.OutOfMemory;
    const names: [*][]const u8 = @ptrCast(@alignCast(raw));
    for (names[0..n]) |*name| name.* = try r.readStr();
    const members = if (is_union) try lattice.sets.@"union"("", names[0..n]) else try lattice.sets.intersection("", names[0..n]);
    writeStrings(out, members);
}

fn log(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const level = try r.readStr();
    try lattice.logging.writeLog(level, try r.readStr());
    mp.writeNil(out);
}

fn guid(msg: []const u8, out: *Buf) !void {
    _ = msg;
    mp.writeStr(out, try lattice.numbergen.guid());
}

fn random32(msg: []const u8, out: *Buf) !void {
    _ = msg;
    mp.writeInt(out, try lattice.numbergen.random32());
}

fn randomInRange(msg: []const u8, out: *Buf) !void {
    var r = try args(msg, 2);
    const min: u32 = @intCast(try r.readInt());
    mp.writeInt(out, try lattice.numbergen.randomInRange(min, @intCast(try r.readInt())));
}

fn console(msg: []const u8, out: *Buf) !void {
    lattice.log(msg);
    mp.writeNil(out);
}
