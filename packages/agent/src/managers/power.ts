/**
 * Power (capability `power`): reboot and power off now (systemctl), scheduled with `shutdown +N`
 * and cancelled with `shutdown -c`, hibernate and suspend where systemd says the host can
 * (`systemctl can-hibernate|can-suspend`), and uptime. A reboot, power-off or sleep is answered
 * first and carried out a moment later, so that the hub hears "ok" before the link goes down with
 * the host.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Capability, PowerRequestBody, PowerResponseBody, SleepState } from '@tether/protocol';
import { ManagerFailure, firstLine, refusal, run, serve, type ManagerLink } from './common.js';

export interface PowerConfig {
  capabilities: Capability[];
  procRoot?: string;
  /** where systemd-logind records a scheduled shutdown */
  scheduledFile?: string;
  /** how long after answering a reboot/poweroff starts (ms) */
  delayMs?: number;
}

/** /run/systemd/shutdown/scheduled: USEC=…, MODE=reboot|poweroff|halt|… */
export function parseScheduled(text: string): { action: string; at: number } | undefined {
  const usec = /^USEC=(\d+)$/m.exec(text)?.[1];
  const mode = /^MODE=(\S+)$/m.exec(text)?.[1];
  if (!usec || !mode) return undefined;
  return { action: mode.slice(0, 32), at: Math.floor(Number(usec) / 1000) };
}

/**
 * What `systemctl can-hibernate` (or can-suspend) answered, as possible or not and why: `yes` is
 * the only answer that lets it happen; `no` (not configured, e.g. no resume device), `na` (the
 * kernel or the hardware cannot), `challenge` (needs interactive authorisation) and a failure to
 * ask at all are reasons.
 */
export function sleepState(verb: 'hibernate' | 'suspend', r: { code: number | null; stdout: string; stderr: string } | Error): SleepState {
  if (r instanceof Error) return { possible: false, reason: `systemctl can-${verb}: ${r.message}`.slice(0, 500) };
  const answer = r.stdout.trim().split('\n')[0]!.trim();
  if (answer === 'yes') return { possible: true };
  const meaning: Record<string, string> = { no: 'not configured on this host', na: 'not supported by this host (kernel, hardware or no swap to resume from)', challenge: 'needs interactive authorisation' };
  const why = meaning[answer] ? `${meaning[answer]} (systemctl can-${verb}: ${answer})` : `systemctl can-${verb}: ${answer || firstLine(r.stderr) || `exit ${r.code}`}`;
  return { possible: false, reason: why.slice(0, 500) };
}

export class PowerService {
  private unserve: (() => void) | undefined;

  constructor(
    private readonly link: ManagerLink,
    private readonly cfg: PowerConfig,
    private readonly log: Logger,
  ) {}

  start(): this {
    this.unserve = serve(this.link, 'power.request', 'power.response', (b) => this.handle(b));
    return this;
  }

  stop(): void {
    this.unserve?.();
  }

  private status(): PowerResponseBody {
    const uptimeSec = Number(readFileSync(`${this.cfg.procRoot ?? '/proc'}/uptime`, 'utf8').split(' ')[0]);
    let scheduled: { action: string; at: number } | undefined;
    try {
      scheduled = parseScheduled(readFileSync(this.cfg.scheduledFile ?? '/run/systemd/shutdown/scheduled', 'utf8'));
    } catch {
      scheduled = undefined;
    }
    return { ok: true, uptimeSec, bootTime: Math.floor(Date.now() - uptimeSec * 1000), ...(scheduled ? { scheduled } : {}) };
  }

  /** Answers first, then runs `systemctl op` a moment later (the answer must reach the hub before the host goes down). */
  private actSoon(op: 'reboot' | 'poweroff' | 'hibernate' | 'suspend'): void {
    this.log.warn({ op }, `${op} requested by the hub`);
    const t = setTimeout(() => {
      void run('systemctl', [op], { timeoutMs: 60_000 }).then(
        (r) => r.code !== 0 && this.log.error({ op, err: firstLine(r.stderr) }, `${op} failed`),
        (err: Error) => this.log.error({ op, err: err.message }, `${op} failed`),
      );
    }, this.cfg.delayMs ?? 1000);
    t.unref();
  }

  private async canSleep(verb: 'hibernate' | 'suspend'): Promise<SleepState> {
    return sleepState(verb, await run('systemctl', [`can-${verb}`], { timeoutMs: 10_000 }).catch((err: Error) => err));
  }

  async handle(req: PowerRequestBody): Promise<PowerResponseBody> {
    if (!this.cfg.capabilities.includes('power')) return refusal('power', this.cfg.capabilities);
    switch (req.op) {
      case 'status':
        return this.status();
      case 'reboot':
      case 'poweroff': {
        // Checked before answering: the command must exist for "ok" to mean something.
        await run('systemctl', ['--version'], { timeoutMs: 10_000 });
        this.actSoon(req.op);
        return { ok: true };
      }
      case 'sleep_states': {
        const [hibernate, suspend] = await Promise.all([this.canSleep('hibernate'), this.canSleep('suspend')]);
        return { ok: true, sleep: { hibernate, suspend } };
      }
      case 'hibernate':
      case 'suspend': {
        // Refused with systemd's reason unless it says yes now: "ok" must mean it will happen.
        const can = await this.canSleep(req.op);
        if (!can.possible) throw new ManagerFailure('unavailable', `${req.op} is not possible: ${can.reason}`);
        this.actSoon(req.op);
        return { ok: true };
      }
      case 'schedule': {
        if (!req.minutes) throw new ManagerFailure('bad_request', 'schedule needs minutes');
        const flag = (req.action ?? 'reboot') === 'reboot' ? '-r' : '-P';
        const r = await run('shutdown', [flag, `+${req.minutes}`, ...(req.message ? [req.message] : [])], { timeoutMs: 30_000 });
        if (r.code !== 0) throw new ManagerFailure('failed', `shutdown ${flag} +${req.minutes}: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        this.log.warn({ action: req.action ?? 'reboot', minutes: req.minutes }, 'shutdown scheduled');
        return this.status();
      }
      case 'cancel': {
        const r = await run('shutdown', ['-c'], { timeoutMs: 30_000 });
        if (r.code !== 0) throw new ManagerFailure('failed', `shutdown -c: ${firstLine(r.stderr) || `exit ${r.code}`}`);
        this.log.warn('scheduled shutdown cancelled');
        return this.status();
      }
      default:
        throw new ManagerFailure('bad_request', `unknown power operation ${JSON.stringify((req as { op: string }).op)}`);
    }
  }
}
