/**
 * `tether ssh HOST`: a terminal on a host, in this terminal, through the hub (the host opens no
 * port and needs no SSH server). Needs the host's `terminal` capability and a fresh step-up.
 */
import type { Command } from 'commander';
import WebSocket from 'ws';
import { Client } from '../client.js';
import { stepUp } from '../accounts.js';
import { fail } from '../output.js';
import { hostId } from './files.js';

/** Connects, confirming a step-up once if the hub asks for one. */
function connect(c: Client, url: string, retried = false): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, c.wsOptions());
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => {
        let e: { error?: string; message?: string } = {};
        try {
          e = JSON.parse(text) as typeof e;
        } catch {
          /* not JSON */
        }
        if (res.statusCode === 403 && e.error === 'step_up_required' && !retried) {
          stepUp(c).then(() => connect(c, url, true).then(resolve, reject), reject);
          return;
        }
        reject(new Error(`${e.message ?? `HTTP ${res.statusCode}`} (${res.statusCode} ${e.error ?? 'error'})`));
      });
    });
    ws.once('error', (err) => reject(c.wsError(err)));
  });
}

export function registerTerminal(program: Command): void {
  program
    .command('ssh <host>')
    .description('open a terminal on a host through the hub (host id or hostname)')
    .option('-u, --user <user>', 'log in as this user (default: the agent’s user)')
    .action(async (host: string, o: { user?: string }) => {
      try {
        const c = Client.fromState();
        const id = await hostId(c, host);
        const cols = process.stdout.columns || 80;
        const rows = process.stdout.rows || 24;
        const qs = new URLSearchParams({ cols: String(cols), rows: String(rows), ...(o.user ? { user: o.user } : {}) });
        const ws = await connect(c, `${c.hub.replace(/^http/, 'ws').replace(/\/$/, '')}/api/v1/hosts/${encodeURIComponent(id)}/terminal?${qs}`);
        const tty = process.stdin.isTTY;
        if (tty) process.stdin.setRawMode(true);
        const restore = () => {
          if (tty) process.stdin.setRawMode(false);
          process.stdin.pause();
        };
        process.stdin.on('data', (b: Buffer) => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'input', data: b.toString('utf8') }));
        });
        process.stdin.on('end', () => {
          // Input ended (a pipe): let the remote shell see end-of-input, then wait for it to exit.
          if (!tty && ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'input', data: '\u0004' }));
        });
        process.stdout.on('resize', () => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'resize', cols: process.stdout.columns, rows: process.stdout.rows }));
        });
        let code = 0;
        // A hub that stops answering mid-session ends it with the reason, not a frozen terminal.
        c.heartbeat(ws, (err) => {
          code = 1;
          process.stderr.write(`\r\ntether: ${err.message}\r\n`);
        });
        ws.on('message', (raw) => {
          const m = JSON.parse(String(raw)) as { type: string; data?: string; exitCode?: number | null; reason?: string; refused?: boolean };
          if (m.type === 'output') process.stdout.write(m.data!);
          else if (m.type === 'exit') {
            code = m.refused ? 1 : (m.exitCode ?? 1);
            if (m.refused || (m.reason && m.exitCode === null)) process.stderr.write(`\r\ntether: ${m.reason}\r\n`);
          }
        });
        ws.on('close', () => {
          restore();
          process.exit(code);
        });
      } catch (err) {
        fail(err);
      }
    });
}
