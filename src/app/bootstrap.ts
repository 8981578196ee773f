/**
 * First start: a demo account with an API key, a 30M-token trial (valid 30 days) and 10 CNY in the wallet, so a
 * newcomer's first request works. The key is kept in data/demo-key (mode 0600) for `tokengrid demo-key`.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { createAccount, createApiKey, type AccountDeps } from '../accounts/index.ts';
import type { ChargingService } from '../charging/index.ts';
import type { Clock } from '../core/index.ts';

export async function bootstrapDemoAccount(deps: {
  accounts: AccountDeps;
  charging: ChargingService;
  clock: Clock;
  demoKeyPath: string;
}): Promise<{ demoKey: string; demoAccountId: string }> {
  const { accounts, charging, clock } = deps;
  const acct = await createAccount(accounts, { name: 'Demo account', kind: 'individual' });
  if (!acct.ok) throw new Error(acct.message);
  const key = await createApiKey(accounts, { accountId: acct.value.id, name: 'demo' });
  if (!key.ok) throw new Error(key.message);
  const now = clock.nowMs();
  // A 30M-token trial (the Unicom offer) valid 30 days, and 10 CNY in the wallet for pay-as-you-go.
  await charging.grantBucket({
    accountId: acct.value.id,
    unit: 'tokens',
    amount: 30_000_000,
    effectiveAtMs: now,
    expiresAtMs: now + 30 * 86_400_000,
    kind: 'trial',
    sourceRef: 'demo-trial',
  });
  await charging.setAccountPolicy(acct.value.id, { overage: 'wallet', currency: 'CNY' });
  await charging.topUpWallet({ accountId: acct.value.id, currency: 'CNY', amountMinor: 1000, sourceRef: 'demo-wallet' });
  // Kept so `tokengrid demo-key` can show it again (the data folder is 0700, the file 0600).
  writeFileSync(deps.demoKeyPath, `${key.value.key}\n`, { mode: 0o600 });
  chmodSync(deps.demoKeyPath, 0o600);
  return { demoKey: key.value.key, demoAccountId: acct.value.id };
}
