/**
 * Child side of the bench's control channel (IPC when spawned by bench/run.ts): `gc` runs a full GC
 * (when started with --expose-gc) and answers memoryUsage; `profileStart` / `profileStop` (arg: file path)
 * run V8's CPU profiler (the one behind --cpu-prof) over the measured window only, so startup, module
 * loading and warm-up are not in the profile; `stop` calls the child's stop function, which must end the
 * process. SIGTERM/SIGINT also stop.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
export interface ChildControl {
  /** Extra answers for named requests (e.g. `usage` in the TokenGrid child). */
  handlers?: Record<string, () => Promise<unknown> | unknown>;
  stop: () => Promise<void>;
}

interface Msg {
  id: number;
  type: string;
  arg?: string;
}

let session: Session | undefined;

export function serveControl(ctl: ChildControl): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    ctl.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(e);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('disconnect', stop);
  process.on('message', (raw) => {
    const msg = raw as Msg;
    const reply = (body: unknown): void => {
      process.send?.({ id: msg.id, body });
    };
    if (msg.type === 'stop') return void (reply({ ok: true }), stop());
    if (msg.type === 'gc') {
      const g = (globalThis as { gc?: () => void }).gc;
      if (g) {
        g();
        g();
      }
      return reply({ gc: g !== undefined, memory: process.memoryUsage() });
    }
    if (msg.type === 'profileStart') {
      session = new Session();
      session.connect();
      void (async () => {
        await session!.post('Profiler.enable');
        await session!.post('Profiler.setSamplingInterval', { interval: Number(msg.arg ?? '250') });
        await session!.post('Profiler.start');
      })().then(
        () => reply({ ok: true }),
        (e: unknown) => reply({ error: String(e) }),
      );
      return;
    }
    if (msg.type === 'profileStop') {
      void (async () => {
        if (!session) throw new Error('profiler not started');
        const { profile } = await session.post('Profiler.stop');
        session.disconnect();
        session = undefined;
        writeFileSync(msg.arg!, JSON.stringify(profile));
      })().then(
        () => reply({ ok: true, path: msg.arg }),
        (e: unknown) => reply({ error: String(e) }),
      );
      return;
    }
    const h = ctl.handlers?.[msg.type];
    if (!h) return reply({ error: `unknown control message ${msg.type}` });
    Promise.resolve()
      .then(h)
      .then(reply, (e: unknown) => reply({ error: String(e) }));
  });
}

/** One JSON line on stdout: how the parent learns the URL (and anything else it needs). */
export function announce(info: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid, ...info })}\n`);
}
