/**
 * Script bundles: tar archives with a manifest, uploaded once and run as jobs on many hosts.
 * Owns `bundles` (metadata) and `<data>/bundles/<sha256>.tar` (the archives, content-addressed).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { Kysely } from 'kysely';
import { listTar, parseManifest, TarError, type BundleManifest } from '@tether/protocol';
import type { ModuleMigrations } from '../../db/migrate.js';

interface BundlesTable {
  id: string;
  name: string;
  sha256: string;
  size: number;
  manifest: string;
  files: number;
  created_by: string;
  created_at: number;
}
interface Tables {
  bundles: BundlesTable;
}

export const bundlesMigrations: ModuleMigrations = {
  '0011_bundles_init': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('bundles')
        .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
        .addColumn('name', 'varchar(200)', (c) => c.notNull())
        .addColumn('sha256', 'varchar(64)', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('files', 'integer', (c) => c.notNull())
        .addColumn('created_by', 'varchar(128)', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

export interface Bundle {
  id: string;
  name: string;
  sha256: string;
  size: number;
  manifest: BundleManifest;
  files: number;
  createdBy: string;
  createdAt: number;
}

const toBundle = (r: BundlesTable): Bundle => ({
  id: r.id,
  name: r.name,
  sha256: r.sha256,
  size: Number(r.size),
  manifest: JSON.parse(r.manifest) as BundleManifest,
  files: r.files,
  createdBy: r.created_by,
  createdAt: Number(r.created_at),
});

export const MAX_BUNDLE_BYTES = 256 * 1024 * 1024;

export class BundleError extends Error {
  constructor(
    readonly status: 400 | 413,
    message: string,
  ) {
    super(message);
  }
}

export class BundleStore {
  private readonly db: Kysely<Tables>;
  readonly dir: string;
  constructor(db: Kysely<any>, dataDir: string) {
    this.db = db as Kysely<Tables>;
    this.dir = join(dataDir, 'bundles');
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  path(b: Bundle): string {
    return join(this.dir, `${b.sha256}.tar`);
  }

  /** Streams an upload to disk (hashing as it goes), checks it is a valid bundle, and records it. */
  async add(body: Readable, meta: { name?: string; createdBy: string; now: number }): Promise<Bundle> {
    const tmp = join(this.dir, `.upload-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            size += chunk.length;
            if (size > MAX_BUNDLE_BYTES) return cb(new BundleError(413, `a bundle may be at most ${MAX_BUNDLE_BYTES} bytes`));
            hash.update(chunk);
            cb(null, chunk);
          },
        }),
        createWriteStream(tmp, { mode: 0o600 }),
      );
      if (size === 0) throw new BundleError(400, 'empty upload: send the tar archive as the request body');
      const fh = await open(tmp, 'r');
      let manifest: BundleManifest;
      let files: number;
      try {
        const read = async (position: number, length: number) => {
          const b = Buffer.alloc(length);
          const { bytesRead } = await fh.read(b, 0, length, position);
          return b.subarray(0, bytesRead);
        };
        const entries = await listTar(read, size);
        const m = entries.find((e) => e.path === 'manifest.json' && e.type === 'file');
        if (!m) throw new TarError('no manifest.json at the root of the archive');
        if (m.size > 64 * 1024) throw new TarError('manifest.json is larger than 64 KiB');
        manifest = parseManifest((await read(m.offset, m.size)).toString('utf8'));
        files = entries.filter((e) => e.type === 'file').length;
      } finally {
        await fh.close();
      }
      const sha256 = hash.digest('hex');
      const final = join(this.dir, `${sha256}.tar`);
      if (existsSync(final)) rmSync(tmp, { force: true });
      else renameSync(tmp, final);
      const b: Bundle = { id: 'b_' + randomBytes(9).toString('base64url'), name: meta.name ?? manifest.name ?? sha256.slice(0, 12), sha256, size, manifest, files, createdBy: meta.createdBy, createdAt: meta.now };
      await this.db
        .insertInto('bundles')
        .values({ id: b.id, name: b.name, sha256, size, manifest: JSON.stringify(manifest), files, created_by: b.createdBy, created_at: b.createdAt })
        .execute();
      return b;
    } catch (err) {
      rmSync(tmp, { force: true });
      if (err instanceof TarError) throw new BundleError(400, `not a valid bundle: ${err.message}`);
      throw err;
    }
  }

  async get(id: string): Promise<Bundle | undefined> {
    const r = await this.db.selectFrom('bundles').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toBundle(r) : undefined;
  }

  async list(): Promise<Bundle[]> {
    return (await this.db.selectFrom('bundles').selectAll().orderBy('created_at', 'desc').limit(1000).execute()).map(toBundle);
  }

  async remove(id: string): Promise<boolean> {
    const b = await this.get(id);
    if (!b) return false;
    await this.db.deleteFrom('bundles').where('id', '=', id).execute();
    // The archive is shared by content: keep it while another bundle record points at it.
    const others = await this.db.selectFrom('bundles').select('id').where('sha256', '=', b.sha256).executeTakeFirst();
    if (!others) rmSync(this.path(b), { force: true });
    return true;
  }
}
