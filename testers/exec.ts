// The exec tester [spec 6.4]: runs `exec raddr testport params...` in its own process group; up iff
// it exits 0. Reported as soon as it exits; at the deadline the whole group is SIGKILLed.

import { spawn, type ChildProcess } from 'node:child_process';
import {
  AttrError,
  type AttrValues,
  type GenericSettings,
  type ProbeContext,
  type ProbeResult,
  type ProbeTarget,
  type Tester,
  type LocalErrno,
} from './contract.js';
import { localErrno, localResult } from './local-error.js';

/** Output kept (the tail of stdout+stderr), for the failure detail. */
export const OUTPUT_LIMIT = 4096;

export interface ExecParams {
  readonly exec: string;
  readonly params: readonly string[];
}

/** Kills the process group led by `pid`; it may already be gone. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // ESRCH: nothing left in the group. EPERM cannot happen for our own children.
  }
}

function lastLine(output: Buffer): string {
  const lines = output.toString('utf8').split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (line !== '') return line.length > 200 ? `${line.slice(0, 200)}...` : line;
  }
  return '';
}

/** One run of the program, from spawn to the single verdict. */
class ExecRun {
  private readonly child: ChildProcess;
  private output = Buffer.alloc(0);
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private settled = false;
  private readonly onAbort = (): void => this.deadline();

  constructor(
    target: ProbeTarget,
    private readonly p: ExecParams,
    private readonly ctx: ProbeContext,
    private readonly resolve: (r: ProbeResult) => void,
  ) {
    this.child = spawn(p.exec, [target.addr, String(target.port), ...p.params], {
      // detached = setsid(): the program leads its own process group, so the deadline can kill
      // everything it started, not only itself.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SUREALIVED_VNAME: target.vname,
        SUREALIVED_RNAME: target.rname,
        SUREALIVED_RADDR: target.addr,
        SUREALIVED_TESTPORT: String(target.port),
      },
    });
    this.child.stdout?.on('data', (chunk: Buffer) => this.collect(chunk));
    this.child.stderr?.on('data', (chunk: Buffer) => this.collect(chunk));
    this.child.on('error', (err: NodeJS.ErrnoException) => {
      const local = localErrno(err.code, 'spawn');
      if (local !== undefined) this.finishLocal(local);
      else this.finish(false, `cannot run ${p.exec}: ${err.code ?? err.message}`);
    });
    this.child.on('exit', (code, signal) => {
      this.exit = { code, signal };
      // Leftovers of the program (background children) go with it.
      if (this.child.pid !== undefined) killGroup(this.child.pid);
    });
    // 'close' comes after the exit and after the output pipes drained: the detail is complete.
    this.child.on('close', () => this.verdict());
    if (ctx.signal.aborted) queueMicrotask(this.onAbort);
    else ctx.signal.addEventListener('abort', this.onAbort, { once: true });
  }

  private collect(chunk: Buffer): void {
    const all = Buffer.concat([this.output, chunk]);
    this.output = all.length > OUTPUT_LIMIT ? all.subarray(all.length - OUTPUT_LIMIT) : all;
  }

  private verdict(): void {
    const exit = this.exit;
    if (exit === undefined) return;
    if (exit.code === 0) return this.finish(true, 'exit code 0');
    const why = exit.signal !== null ? `killed by ${exit.signal}` : `exit code ${exit.code ?? '?'}`;
    const line = lastLine(this.output);
    this.finish(false, line === '' ? why : `${why}: ${line}`);
  }

  private deadline(): void {
    if (this.settled) return;
    // Exited, but something outside the group still holds the pipes: judge the exit status.
    if (this.exit !== undefined) return this.verdict();
    if (this.child.pid !== undefined) killGroup(this.child.pid);
    const line = lastLine(this.output);
    this.finish(false, `still running after ${this.ctx.timeoutMs} ms, killed${line === '' ? '' : `: ${line}`}`);
  }

  /** fork/spawn failed for want of descriptors, memory or processes: no verdict on the real. */
  private finishLocal(errno: LocalErrno): void {
    if (this.settled) return;
    this.settled = true;
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.resolve(localResult(errno, `cannot run ${this.p.exec}`));
  }

  private finish(ok: boolean, detail: string): void {
    if (this.settled) return;
    this.settled = true;
    this.ctx.signal.removeEventListener('abort', this.onAbort);
    // Our ends of the pipes are closed now, whoever still holds the other ends.
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    this.resolve({ ok, detail, connectMs: 0 });
  }
}

export const execTester: Tester<ExecParams> = {
  name: 'exec',
  // Parent ends of the stdout and stderr pipes, and for the moment of the spawn the child ends and
  // libuv's exec-error pipe.
  descriptorsPerProbe: 4,
  attrs: [
    { name: 'exec', type: 'string', required: true, maxLength: 511, doc: 'Program to run (no shell, no PATH search): argv = [exec, raddr, testport, params...]. Exit 0 = up.' },
    { name: 'params', type: 'string', maxLength: 1023, doc: 'Extra arguments, separated by whitespace.' },
  ],

  compile(values: AttrValues, _generic: GenericSettings): ExecParams {
    const exec = values.exec;
    if (typeof exec !== 'string' || exec === '') throw new AttrError('exec', 'exec is required');
    if (exec.includes('\0')) throw new AttrError('exec', 'exec contains a NUL byte');
    const text = typeof values.params === 'string' ? values.params.trim() : '';
    // Every real gets all of its params (the original split them in a buffer shared between reals).
    return { exec, params: text === '' ? [] : text.split(/\s+/) };
  },

  probe(target: ProbeTarget, params: ExecParams, ctx: ProbeContext): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => {
      try {
        new ExecRun(target, params, ctx, resolve);
      } catch (err) {
        const local = localErrno((err as NodeJS.ErrnoException).code, 'spawn');
        if (local !== undefined) resolve(localResult(local, `cannot run ${params.exec}`));
        else resolve({ ok: false, detail: `cannot run ${params.exec}: ${(err as Error).message}`, connectMs: 0 });
      }
    });
  },
};
