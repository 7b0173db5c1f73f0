// Test helper: the deterministic set of Go modules every integration test
// serves, and the consumer module that builds against them. Owns the module
// contents (paths, versions, times, go.mod, Go sources); must not know about
// HTTP or zip bytes (fixture-backend.ts and modzip.ts do).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One version of a fixture module. */
export interface FixtureVersion {
  /** Canonical semantic version, real case (e.g. `v1.0.0-RC1`). */
  version: string;
  /** RFC 3339 time served in `.info`. */
  time: string;
  /**
   * The go.mod, served as `.mod` and placed at the zip root. `null` means the
   * zip has no go.mod and `.mod` is synthesized as `module <path>\n`, as the go
   * command does for `+incompatible` versions.
   */
  goMod: string | null;
  /** Files of the module (paths relative to the module root), go.mod excluded. */
  files: Record<string, string | Buffer>;
}

/** A module path with its versions, as the fixture backend serves it. */
export interface FixtureModule {
  /** Module path, real case (e.g. `example.com/BurntSushi/toml`). */
  path: string;
  versions: FixtureVersion[];
  /** Explicit `list` body lines; default: every version that is not a pseudo-version. */
  list?: string[];
  /** Version answered for `@latest`; default: none, so `@latest` is 404. */
  latest?: string;
}

/** Size of `example.com/big`'s incompressible `blob.bin`: 6 MiB. */
export const BIG_BLOB_BYTES = 6 * 1024 * 1024;

let bigBlob: Buffer | undefined;

/** `bytes` of seeded xorshift32 output: incompressible, and the same for the same seed. */
export function xorshiftBytes(bytes: number, seed: number): Buffer {
  const words = new Uint32Array(bytes / 4);
  let x = seed;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer);
}

/** 6 MiB of seeded pseudo-random bytes, the same on every call. */
function blob(): Buffer {
  bigBlob ??= xorshiftBytes(BIG_BLOB_BYTES, 0x9e3779b9);
  return bigBlob;
}

// go 1.16 in the dependency chain on purpose: before 1.17 a go.mod lists only
// direct requirements, so reaching example.com/base really goes through
// example.com/lib's go.mod (an unpruned module graph).
const chainGo = 'go 1.16';

/**
 * The module set, built fresh on each call (only the 6 MiB blob is shared,
 * read-only). Every package compiles; {@link writeConsumerModule} imports them.
 */
export function fixtureModules(): FixtureModule[] {
  return [
    {
      // Upper-case module path: escaped as example.com/!burnt!sushi/toml on the wire.
      path: 'example.com/BurntSushi/toml',
      versions: [
        {
          version: 'v1.0.0',
          time: '2022-01-10T12:00:00Z',
          goMod: 'module example.com/BurntSushi/toml\n\ngo 1.16\n',
          files: {
            'LICENSE': 'MIT License (fixture)\n',
            'toml.go': 'package toml\n\n// Version names this fixture module.\nfunc Version() string { return "toml v1.0.0" }\n',
          },
        },
      ],
    },
    {
      // Upper-case pre-release: escaped as v1.0.0-!r!c1.
      path: 'example.com/rc/mod',
      versions: [
        {
          version: 'v1.0.0-RC1',
          time: '2023-02-01T08:30:00Z',
          goMod: 'module example.com/rc/mod\n\ngo 1.16\n',
          files: { 'mod.go': 'package mod\n\n// Version names this fixture module.\nfunc Version() string { return "rc v1.0.0-RC1" }\n' },
        },
      ],
    },
    {
      // Major version suffix: module path ends in /v2.
      path: 'example.com/major/v2',
      versions: [
        {
          version: 'v2.1.0',
          time: '2023-03-15T10:00:00Z',
          goMod: 'module example.com/major/v2\n\ngo 1.16\n',
          files: { 'major.go': 'package major\n\n// Version names this fixture module.\nfunc Version() string { return "major v2.1.0" }\n' },
        },
      ],
    },
    {
      // Only a pseudo-version: list is empty (200, 0 bytes), @latest answers it.
      path: 'example.com/pseudo',
      versions: [
        {
          version: 'v0.0.0-20240101000000-abcdefabcdef',
          time: '2024-01-01T00:00:00Z',
          goMod: 'module example.com/pseudo\n\ngo 1.16\n',
          files: { 'pseudo.go': 'package pseudo\n\n// Version names this fixture module.\nfunc Version() string { return "pseudo" }\n' },
        },
      ],
      list: [],
      latest: 'v0.0.0-20240101000000-abcdefabcdef',
    },
    {
      // +incompatible: v3 without a go.mod; the .mod is synthesized.
      path: 'example.com/incompat',
      versions: [
        {
          version: 'v3.0.0+incompatible',
          time: '2021-06-01T00:00:00Z',
          goMod: null,
          files: { 'incompat.go': 'package incompat\n\n// Version names this fixture module.\nfunc Version() string { return "incompat v3.0.0" }\n' },
        },
      ],
    },
    {
      // A zip of several MiB: 6 MiB of incompressible bytes.
      path: 'example.com/big',
      versions: [
        {
          version: 'v1.0.0',
          time: '2023-05-05T05:05:05Z',
          goMod: 'module example.com/big\n\ngo 1.16\n',
          files: {
            'big.go': `package big\n\n// BlobBytes is the size of blob.bin.\nconst BlobBytes = ${BIG_BLOB_BYTES}\n\n// Version names this fixture module.\nfunc Version() string { return "big v1.0.0" }\n`,
            'blob.bin': blob(),
          },
        },
      ],
    },
    {
      // Dependency chain: app v1.2.0 -> lib v1.1.0 -> base v1.0.0.
      path: 'example.com/app',
      versions: [
        {
          version: 'v1.2.0',
          time: '2023-09-01T00:00:00Z',
          goMod: `module example.com/app\n\n${chainGo}\n\nrequire example.com/lib v1.1.0\n`,
          files: {
            'app.go': 'package app\n\nimport "example.com/lib"\n\n// Version names this module and its dependencies.\nfunc Version() string { return "app v1.2.0 -> " + lib.Version() }\n',
          },
        },
      ],
    },
    {
      path: 'example.com/lib',
      versions: [
        {
          version: 'v1.0.0',
          time: '2023-07-01T00:00:00Z',
          goMod: `module example.com/lib\n\n${chainGo}\n`,
          files: { 'lib.go': 'package lib\n\n// Version names this fixture module.\nfunc Version() string { return "lib v1.0.0" }\n' },
        },
        {
          version: 'v1.1.0',
          time: '2023-08-01T00:00:00Z',
          goMod: `module example.com/lib\n\n${chainGo}\n\nrequire example.com/base v1.0.0\n`,
          files: {
            'lib.go': 'package lib\n\nimport "example.com/base"\n\n// Version names this module and its dependencies.\nfunc Version() string { return "lib v1.1.0 -> " + base.Version() }\n',
          },
        },
      ],
    },
    {
      path: 'example.com/base',
      versions: [
        {
          version: 'v1.0.0',
          time: '2023-06-01T00:00:00Z',
          goMod: `module example.com/base\n\n${chainGo}\n`,
          files: { 'base.go': 'package base\n\n// Version names this fixture module.\nfunc Version() string { return "base v1.0.0" }\n' },
        },
      ],
    },
  ];
}

/**
 * Arguments for `go get` in the consumer module: every module it imports
 * directly. example.com/lib and example.com/base arrive through app's go.mod.
 */
export const CONSUMER_GET_ARGS: readonly string[] = [
  'example.com/app@v1.2.0',
  'example.com/BurntSushi/toml@v1.0.0',
  'example.com/rc/mod@v1.0.0-RC1',
  'example.com/major/v2@v2.1.0',
  'example.com/pseudo@latest',
  'example.com/incompat@v3.0.0+incompatible',
  'example.com/big@v1.0.0',
];

/** What the consumer binary prints (one line) when built against the fixtures. */
export const CONSUMER_OUTPUT =
  'app v1.2.0 -> lib v1.1.0 -> base v1.0.0 | toml v1.0.0 | rc v1.0.0-RC1 | major v2.1.0 | pseudo | incompat v3.0.0 | big v1.0.0 6291456';

/**
 * Writes a main module `example.com/consumer` into `dir` (created if missing)
 * whose main package imports every fixture package. Build it with
 * `go get ...CONSUMER_GET_ARGS` then `go build ./...`; running it prints
 * {@link CONSUMER_OUTPUT}.
 */
export async function writeConsumerModule(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'go.mod'), 'module example.com/consumer\n\ngo 1.19\n');
  await writeFile(
    join(dir, 'main.go'),
    `package main

import (
	"fmt"

	"example.com/BurntSushi/toml"
	"example.com/app"
	"example.com/big"
	"example.com/incompat"
	major "example.com/major/v2"
	"example.com/pseudo"
	rc "example.com/rc/mod"
)

func main() {
	fmt.Println(app.Version(), "|", toml.Version(), "|", rc.Version(), "|", major.Version(), "|",
		pseudo.Version(), "|", incompat.Version(), "|", big.Version(), big.BlobBytes)
}
`,
  );
}

/** Every fixture module version, as `path@version`. */
export const allModuleVersions = fixtureModules().flatMap((m) => m.versions.map((v) => `${m.path}@${v.version}`));
