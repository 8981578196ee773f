/**
 * Outgoing webhooks are always signed (Standard Webhooks; a generated secret is whsec_<base64>): the secret comes from the environment (already checked by the config), or
 * is generated once and written to a file in the data folder (mode 0600) whose path, not the secret, is logged.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatWebhookSecret, type Random } from '../core/index.ts';
import type { Logger } from '../telemetry/index.ts';

export function signingSecret(opts: {
  fromEnv: string | undefined;
  envName: string;
  dataDir: string;
  fileName: string;
  random: Random;
  logger: Logger;
}): string {
  if (opts.fromEnv !== undefined) return opts.fromEnv;
  const path = join(opts.dataDir, opts.fileName);
  if (!existsSync(path)) {
    writeFileSync(path, `${formatWebhookSecret(opts.random.bytes(32))}\n`, { mode: 0o600 });
    opts.logger.warn(
      { path, env: opts.envName },
      'no webhook secret configured: generated one (whsec_...); give it to the receiver to verify webhook-signature (Standard Webhooks)',
    );
  }
  return readFileSync(path, 'utf8').trim();
}
