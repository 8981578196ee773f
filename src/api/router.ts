import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Family } from './http.ts';

export type AuthKind = 'none' | 'key' | 'admin';

export interface RouteContext {
  req: IncomingMessage;
  res: ServerResponse;
  requestId: string;
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface Route<C = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path with `:name` segments, e.g. /v1/models/:id */
  path: string;
  family: Family;
  auth: AuthKind;
  handler: (rc: RouteContext, auth: C) => Promise<void> | void;
}

interface Compiled {
  route: Route<never>;
  segments: string[];
  params: (string | null)[];
}

export interface RouteMatch {
  route: Route<never>;
  params: Record<string, string>;
}

const NO_PARAMS: Record<string, string> = Object.freeze({});

/** A small exact-match router: static paths by map lookup, parameterised ones by segment match. */
export class Router {
  /** Static paths map to a ready match (no object per request). */
  readonly #static = new Map<string, Map<string, RouteMatch>>();
  readonly #dynamic: Compiled[] = [];

  add(route: Route<never>): void {
    if (!route.path.includes(':')) {
      let byMethod = this.#static.get(route.path);
      if (!byMethod) this.#static.set(route.path, (byMethod = new Map()));
      byMethod.set(route.method, Object.freeze({ route, params: NO_PARAMS }));
      return;
    }
    const segments = route.path.split('/');
    this.#dynamic.push({ route, segments, params: segments.map((s) => (s.startsWith(':') ? s.slice(1) : null)) });
  }

  /** The route, or 'method' when the path exists under another method, or undefined. */
  match(method: string, path: string): RouteMatch | 'method' | undefined {
    const byMethod = this.#static.get(path);
    if (byMethod) return byMethod.get(method) ?? 'method';
    const parts = path.split('/');
    let methodMismatch = false;
    for (const c of this.#dynamic) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length; i++) {
        const name = c.params[i];
        if (name) {
          if (parts[i] === '') {
            ok = false;
            break;
          }
          try {
            params[name] = decodeURIComponent(parts[i]!);
          } catch {
            ok = false;
            break;
          }
        } else if (c.segments[i] !== parts[i]) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      if (c.route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route: c.route, params };
    }
    return methodMismatch ? 'method' : undefined;
  }
}
