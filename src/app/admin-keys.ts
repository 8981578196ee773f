/**
 * The operator's root admin key: data/admin-key (mode 0600, created on the first start), plus TOKENGRID_ADMIN_KEY
 * when set. Authentication compares sha256 digests in constant time; rotation writes a new file (temp + rename)
 * and the old key stops working at once.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constantTimeEqual, sha256Hex, type Random } from '../core/index.ts';
import type { AdminIdentity } from '../api/shell-deps.ts';
import type { Logger } from '../telemetry/index.ts';

export interface RootAdminKeys {
  /** data/admin-key */
  path: string;
  /** The key this start created (first start only): printed once. */
  created: string | undefined;
  authenticate(token: string | undefined): AdminIdentity | undefined;
  rotate(): Promise<{ key: string; path: string }>;
}

const ROOT: AdminIdentity = { id: 'root', role: 'operator', accountIds: null };
const newKey = (random: Random): string => `tgadmin-${random.bytes(24).toString('base64url')}`;

export function openRootAdminKeys(opts: { dataDir: string; envKey: string | undefined; random: Random; logger: Logger }): RootAdminKeys {
  const path = join(opts.dataDir, 'admin-key');
  let created: string | undefined;
  if (!existsSync(path)) {
    created = newKey(opts.random);
    writeFileSync(path, `${created}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const hashes = new Map<string, AdminIdentity>();
  let rootKeyHash = sha256Hex(readFileSync(path, 'utf8').trim());
  hashes.set(rootKeyHash, ROOT);
  if (opts.envKey !== undefined) hashes.set(sha256Hex(opts.envKey), { id: 'root-env', role: 'operator', accountIds: null });
  return {
    path,
    created,
    authenticate(token) {
      if (!token) return undefined;
      const h = sha256Hex(token);
      for (const [hash, identity] of hashes) if (constantTimeEqual(h, hash)) return identity;
      return undefined;
    },
    async rotate() {
      const key = newKey(opts.random);
      const tmp = `${path}.new`;
      writeFileSync(tmp, `${key}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, path);
      hashes.delete(rootKeyHash);
      rootKeyHash = sha256Hex(key);
      hashes.set(rootKeyHash, ROOT);
      opts.logger.warn({ path }, 'root admin key rotated; the previous key no longer works');
      return { key, path };
    },
  };
}
