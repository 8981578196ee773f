import type { RequestContext } from '../../gateway/index.ts';
import type { Route } from '../router.ts';

/** Self-service routes for key holders (issue 5): balance, usage, bills, legacy OpenAI billing endpoints. */
export function selfRoutes(_deps: unknown): Route<RequestContext>[] {
  return [];
}
