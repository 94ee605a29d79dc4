//! msgpack.zig — the subset of MessagePack the contracts use: nil, bool, ints, str, bin, array, map.
//!
//! Like the C SDK's msgpack.c: the writer picks the smallest encoding (as msgpack-python does), the reader
//! accepts every width and takes str and bin interchangeably, floats and ext values are only skipped.
const lattice = @import("lattice.zig");
const Buf = lattice.Buf;

// ---- writer ---------------------------------------------------------------------------------------------

/// A tag byte followed by `n` big-endian bytes of `v`.
fn tagged(b: *Buf, tag: u8, v: u64, n: u4) void {
    var tmp: [9]u8 = undefined;
    tmp[0] = tag;
    var x = v;
    var i: usize = n;
    while (i > 0) : (i -= 1) {
        tmp[i] = @truncate(x);
        x >>= 8;
    }
    b.append(tmp[0 .. @as(usize, n) + 1]);
}

/// The header of a str/bin/array/map: the fix form below `fix_max` (when the type has one), else the
/// 8-bit (when there is one), 16- or 32-bit length forms.
fn header(b: *Buf, fix: u8, fix_max: u32, tag8: u8, tag16: u8, n: u32) void {
    if (fix != 0 and n < fix_max) {
        tagged(b, fix | @as(u8, @intCast(n)), 0, 0);
    } else if (tag8 != 0 and n <= 0xff) {
        tagged(b, tag8, n, 1);
    } else if (n <= 0xffff) {
        tagged(b, tag16, n, 2);
    } else {
        tagged(b, tag16 + 1, n, 4);
    }
}

pub fn writeNil(b: *Buf) void {
    b.appendByte(0xc0);
}

pub fn writeBool(b: *Buf, v: bool) void {
    b.appendByte(if (v) 0xc3 else 0xc2);
}

pub fn writeInt(b: *Buf, v: i64) void {
    if (v >= 0) {
        const u: u64 = @intCast(v);
        if (u < 128) tagged(b, @intCast(u), 0, 0) else if (u <= 0xff) tagged(b, 0xcc, u, 1) else if (u <= 0xffff) tagged(b, 0xcd, u, 2) else if (u <= 0xffffffff) tagged(b, 0xce, u, 4) else tagged(b, 0xcf, u, 8);
    } else {
        const u: u64 = @bitCast(v);
        if (v >= -32) tagged(b, @truncate(u), 0, 0) else if (v >= -128) tagged(b, 0xd0, u, 1) else if (v >= -32768) tagged(b, 0xd1, u, 2) else if (v >= -2147483648) tagged(b, 0xd2, u, 4) else tagged(b, 0xd3, u, 8);
    }
}

pub fn writeStr(b: *Buf, s: []const u8) void {
    header(b, 0xa0, 32, 0xd9, 0xda, @intCast(s.len));
    b.append(s);
}

pub fn writeBin(b: *Buf, s: []const u8) void {
    header(b, 0, 0, 0xc4, 0xc5, @intCast(s.len));
    b.append(s);
}

pub fn writeArray(b: *Buf, n: u32) void {
    header(b, 0x90, 16, 0, 0xdc, n);
}

pub fn writeMap(b: *Buf, n: u32) void {
    header(b, 0x80, 16, 0, 0xde, n);
}

// ---- reader ---------------------------------------------------------------------------------------------

pub const Malformed = error{Malformed};

/// A cursor over msgpack bytes; every read fails with error.Malformed on a type mismatch or truncation.
pub const Reader = struct {
    bytes: []const u8,
    pos: usize = 0,

    pub fn init(bytes: []const u8) Reader {
        return .{ .bytes = bytes };
    }

    pub fn done(r: *const Reader) bool {
        return r.pos == r.bytes.len;
    }

    fn peek(r: *const Reader) Malformed!u8 {
        if (r.pos >= r.bytes.len) return error.Malformed;
        return r.bytes[r.pos];
    }

    fn take(r: *Reader, n: u64) Malformed![]const u8 {
        if (n > r.bytes.len - r.pos) return error.Malformed;
        const s = r.bytes[r.pos..][0..@intCast(n)];
        r.pos += @intCast(n);
        return s;
    }

    /// A big-endian unsigned integer of `n` bytes.
    fn be(r: *Reader, n: u64) Malformed!u64 {
        var x: u64 = 0;
        for (try r.take(n)) |c| x = x << 8 | c;
        return x;
    }

    /// Consumes a nil and returns true, or returns false and consumes nothing.
    pub fn readNil(r: *Reader) bool {
        if (r.pos < r.bytes.len and r.bytes[r.pos] == 0xc0) {
            r.pos += 1;
            return true;
        }
        return false;
    }

    pub fn readBool(r: *Reader) Malformed!bool {
        const t = try r.peek();
        if (t != 0xc2 and t != 0xc3) return error.Malformed;
        r.pos += 1;
        return t == 0xc3;
    }

    pub fn readInt(r: *Reader) Malformed!i64 {
        const t = try r.peek();
        r.pos += 1;
        switch (t) {
            0x00...0x7f => return t,
            0xe0...0xff => return @as(i8, @bitCast(t)),
            0xcc...0xcf => {
                const u = try r.be(@as(u64, 1) << @intCast(t - 0xcc));
                if (u > std_max_i64) return error.Malformed;
                return @intCast(u);
            },
            0xd0 => return @as(i8, @bitCast(@as(u8, @truncate(try r.be(1))))),
            0xd1 => return @as(i16, @bitCast(@as(u16, @truncate(try r.be(2))))),
            0xd2 => return @as(i32, @bitCast(@as(u32, @truncate(try r.be(4))))),
            0xd3 => return @bitCast(try r.be(8)),
            else => {
                r.pos -= 1;
                return error.Malformed;
            },
        }
    }

    /// A str or a bin (senders differ in which one they use for text).
    pub fn readStr(r: *Reader) Malformed![]const u8 {
        const t = try r.peek();
        const n: u64 = switch (t) {
            0xa0...0xbf => blk: {
                r.pos += 1;
                break :blk t & 0x1f;
            },
            0xd9, 0xda, 0xdb => blk: {
                r.pos += 1;
                break :blk try r.be(@as(u64, 1) << @intCast(t - 0xd9));
            },
            0xc4, 0xc5, 0xc6 => blk: {
                r.pos += 1;
                break :blk try r.be(@as(u64, 1) << @intCast(t - 0xc4));
            },
            else => return error.Malformed,
        };
        return r.take(n);
    }

    pub const readBin = readStr;

    pub fn readArray(r: *Reader) Malformed!u32 {
        const t = try r.peek();
        r.pos += 1;
        return switch (t) {
            0x90...0x9f => t & 0x0f,
            0xdc => @intCast(try r.be(2)),
            0xdd => @intCast(try r.be(4)),
            else => {
                r.pos -= 1;
                return error.Malformed;
            },
        };
    }

    pub fn readMap(r: *Reader) Malformed!u32 {
        const t = try r.peek();
        r.pos += 1;
        return switch (t) {
            0x80...0x8f => t & 0x0f,
            0xde => @intCast(try r.be(2)),
            0xdf => @intCast(try r.be(4)),
            else => {
                r.pos -= 1;
                return error.Malformed;
            },
        };
    }

    /// Skips one whole value, nested or not. Iterative, so hostile nesting cannot exhaust the stack:
    /// `pending` counts values still to skip, and each needs at least one byte.
    pub fn skip(r: *Reader) Malformed!void {
        var pending: u64 = 1;
        while (pending > 0) : (pending -= 1) {
            const t = try r.peek();
            r.pos += 1;
            const body: u64 = switch (t) {
                0x00...0x7f, 0xe0...0xff, 0xc0, 0xc2, 0xc3 => 0,
                0x80...0x8f => blk: {
                    pending += 2 * @as(u64, t & 0x0f);
                    break :blk 0;
                },
                0x90...0x9f => blk: {
                    pending += t & 0x0f;
                    break :blk 0;
                },
                0xa0...0xbf => t & 0x1f,
                0xc4, 0xc5, 0xc6 => try r.be(@as(u64, 1) << @intCast(t - 0xc4)),
                0xc7, 0xc8, 0xc9 => 1 + try r.be(@as(u64, 1) << @intCast(t - 0xc7)),
                0xca => 4,
                0xcb => 8,
                0xcc...0xcf => @as(u64, 1) << @intCast(t - 0xcc),
                0xd0...0xd3 => @as(u64, 1) << @intCast(t - 0xd0),
                0xd4...0xd8 => 1 + (@as(u64, 1) << @intCast(t - 0xd4)),
                0xd9, 0xda, 0xdb => try r.be(@as(u64, 1) << @intCast(t - 0xd9)),
                0xdc, 0xdd => blk: {
                    pending += try r.be(@as(u64, 2) << @intCast(t - 0xdc));
                    break :blk 0;
                },
                0xde, 0xdf => blk: {
                    pending += 2 * try r.be(@as(u64, 2) << @intCast(t - 0xde));
                    break :blk 0;
                },
                else => return error.Malformed, // 0xc1 is never used
            };
            _ = try r.take(body);
            if (pending - 1 > r.bytes.len - r.pos) return error.Malformed;
        }
    }
};

const std_max_i64: u64 = 0x7fffffffffffffff;
