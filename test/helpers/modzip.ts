// Test helper: writes module zips in the format the go command accepts
// (golang.org/x/mod/zip): one deflated entry per file, each named
// `{modulePath}@{version}/{file}` in real case, no directory entries.
// Owns the zip byte layout and a table-based CRC-32 (node:zlib has no crc32 on
// Node 20). Must not decide which files a module has: that is fixture-modules.ts.
import { deflateRawSync } from 'node:zlib';

const CRC_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE 802.3, the polynomial zip uses) of `data`. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// A fixed modification time (2020-01-01 00:00:00, MS-DOS format) so the same
// input always gives the same bytes; the go command ignores entry times.
const DOS_TIME = 0;
const DOS_DATE = ((2020 - 1980) << 9) | (1 << 5) | 1;
const VERSION_NEEDED = 20; // 2.0: deflate
const FLAG_UTF8 = 1 << 11;
const METHOD_DEFLATE = 8;

/**
 * Builds a Go module zip: every file in `files` (paths relative to the module
 * root, `/`-separated) becomes the entry `{modulePath}@{version}/{file}`,
 * deflated, in sorted order. Zip64 is not written: total size must stay under
 * 4 GiB (the go command's own limit is 500 MiB).
 */
export function makeModuleZip(modulePath: string, version: string, files: Record<string, string | Buffer>): Buffer {
  const prefix = `${modulePath}@${version}/`;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const file of Object.keys(files).sort()) {
    const content = files[file]!;
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    const name = Buffer.from(prefix + file, 'utf8');
    const compressed = deflateRawSync(data);
    const crc = crc32(data);

    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(VERSION_NEEDED, 4);
    local.writeUInt16LE(FLAG_UTF8, 6);
    local.writeUInt16LE(METHOD_DEFLATE, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28); // extra field length
    locals.push(local, name, compressed);

    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(VERSION_NEEDED, 4); // version made by (MS-DOS host)
    central.writeUInt16LE(VERSION_NEEDED, 6);
    central.writeUInt16LE(FLAG_UTF8, 8);
    central.writeUInt16LE(METHOD_DEFLATE, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(name.length, 28);
    // extra length, comment length, disk number, internal and external
    // attributes are all zero (a regular file).
    central.writeUInt32LE(offset, 42);
    centrals.push(central, name);

    offset += local.length + name.length + compressed.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const count = centrals.length / 2;
  if (count > 0xffff || offset + centralSize > 0xffffffff) {
    throw new Error(`makeModuleZip: ${modulePath}@${version} needs zip64 (${count} files, ${offset + centralSize} bytes); not supported`);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(count, 8); // entries on this disk
  end.writeUInt16LE(count, 10); // entries in total
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}
