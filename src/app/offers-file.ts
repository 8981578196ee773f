/**
 * The package catalog file: parsed at start (an invalid file stops the start), reloaded on demand
 * (POST /admin/offers/reload) and when the file changes (polled every 2 s while `watch`); a reload that fails
 * keeps the previous catalog and says why.
 */
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { OfferCatalogHolder, parseOfferCatalog } from '../billing/index.ts';
import { err, ok, type Result } from '../core/index.ts';
import type { Logger } from '../telemetry/index.ts';

type CatalogContext = NonNullable<Parameters<typeof parseOfferCatalog>[1]>;

export interface OffersFile {
  path: string;
  holder: OfferCatalogHolder;
  reload(): Result<{ version: string; offers: number; warnings: string[] }, string>;
  close(): void;
}

export function openOffersFile(opts: { path: string; context: CatalogContext; logger: Logger; watch: boolean }): OffersFile {
  const { path, context, logger } = opts;
  const first = parseOfferCatalog(readFileSync(path, 'utf8'), context);
  if (!first.ok) throw new Error(`${path}: ${first.message}`);
  for (const w of first.value.warnings) logger.warn({ file: path }, w);
  const holder = new OfferCatalogHolder(first.value);
  const reload = (): Result<{ version: string; offers: number; warnings: string[] }, string> => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      return err('invalid', `cannot read ${path}: ${(e as Error).message}`);
    }
    const r = holder.reload(text, context);
    if (!r.ok) {
      logger.error({ file: path }, r.message);
      return r;
    }
    logger.info({ file: path, version: r.value.version, offers: r.value.offers.size }, 'offer catalog reloaded');
    return ok({ version: r.value.version, offers: r.value.offers.size, warnings: r.value.warnings });
  };
  const onChange = (): void => {
    reload();
  };
  if (opts.watch) watchFile(path, { interval: 2000, persistent: false }, onChange);
  return { path, holder, reload, close: () => unwatchFile(path, onChange) };
}
