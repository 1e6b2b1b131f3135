// Running the engine's and the kernel's tools (podman, ip, nsenter) with argument arrays: no shell,
// no interpolation, errors that say which command failed and what it printed.
import { execFile, execFileSync } from 'node:child_process';

export interface RunOptions {
  /** Written to the command's stdin, then stdin is closed. */
  input?: string;
  /** Kills the command after this long (default 60 s). */
  timeoutMs?: number;
  /** Resolve with the exit code instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(
    readonly command: readonly string[],
    readonly code: number | string | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    const out = (stderr.trim() || stdout.trim()).slice(-2000);
    super(`command failed (${code}): ${command.join(' ')}${out ? `\n${out}` : ''}`);
    this.name = 'CommandError';
  }
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024, env: opts.env ?? process.env, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (!err) return resolve({ stdout, stderr, code: 0 });
        const code = typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
        if (opts.allowFailure && code >= 0) return resolve({ stdout, stderr, code });
        const why = (err as { killed?: boolean }).killed ? 'timeout' : ((err as { code?: number | string }).code ?? null);
        reject(new CommandError([cmd, ...args], why, stdout, stderr));
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

/** For exit handlers, where nothing asynchronous runs any more. Never throws. */
export function runSyncQuiet(cmd: string, args: readonly string[], timeoutMs = 20_000): void {
  try {
    execFileSync(cmd, args, { stdio: 'ignore', timeout: timeoutMs });
  } catch {
    /* best effort: setup.sh removes whatever is left */
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns a value other than undefined/false, or fails after `timeoutMs`
 * with the last probe error or value in the message.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 30_000, intervalMs = 250 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}
