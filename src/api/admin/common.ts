import type { z } from 'zod';
import { TokenGridError, type ErrorCode } from '../../core/index.ts';
import { readJson } from '../http.ts';
import type { RouteContext } from '../router.ts';
import type { AdminIdentity } from '../shell-deps.ts';

/** Parse an admin JSON body with a zod schema; a failure is a 400 naming the field. */
export async function parseBody<S extends z.ZodType>(rc: RouteContext, schema: S, limitBytes: number): Promise<z.infer<S>> {
  const raw = await readJson(rc.req, limitBytes, { rejectDuplicateKeys: true });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.join('.');
    throw new TokenGridError('invalid_request', path ? `${path}: ${issue.message}` : issue.message, path || null);
  }
  return parsed.data;
}

/** Map a domain Result error code to a registered error code. */
export function failWith(code: string, message: string): never {
  const map: Record<string, ErrorCode> = {
    invalid: 'invalid_request',
    invalid_request: 'invalid_request',
    not_found: 'not_found',
    conflict: 'conflict',
    idempotency_key_reused: 'idempotency_key_reused',
    unprocessable: 'unprocessable',
    payment_required: 'payment_required',
    permission_denied: 'permission_denied',
  };
  throw new TokenGridError(map[code] ?? 'invalid_request', message);
}

export function requireWrite(admin: AdminIdentity): void {
  if (admin.role === 'finance') throw new TokenGridError('permission_denied', 'The finance role is read-only.');
}

export function requireOperator(admin: AdminIdentity): void {
  if (admin.role !== 'operator') throw new TokenGridError('permission_denied', 'Only an operator admin may do this.');
}

/** Enterprise admins may act on their own accounts and their sub-accounts only. */
export async function requireAccountAccess(
  admin: AdminIdentity,
  accountId: string,
  parentOf: (id: string) => Promise<string | null | undefined>,
): Promise<void> {
  if (admin.accountIds === null) return;
  let id: string | null | undefined = accountId;
  for (let depth = 0; id && depth < 8; depth++) {
    if (admin.accountIds.includes(id)) return;
    id = await parentOf(id);
  }
  throw new TokenGridError('permission_denied', `This admin key may not manage account ${accountId}.`);
}

export const isoOrNull = (ms: number | null | undefined): string | null => (ms === null || ms === undefined ? null : new Date(ms).toISOString());
