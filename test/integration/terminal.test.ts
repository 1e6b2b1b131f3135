/**
 * Web terminals on a real agent: a pty through the hub, resize, flow control against a reader
 * that stops reading, clean ends, the capability lock, recordings that replay the same output,
 * audit entries, and `tether ssh`.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { PROTOCOL_VERSION, decodeFrame, encodeFrame, newNonce, type BodyOf, type Message } from '@tether/protocol';
import { TERMINAL_USER, TERMINAL_USER_GROUP, TERMINAL_USER_TOML, TestAgent, TestHub, cli, tempDir, waitFor } from '@tether/testkit';

interface Term {
  ws: WebSocket;
  out: () => string;
  opened: Promise<{ pid: number; user: string }>;
  exit: Promise<{ exitCode: number | null; reason?: string; refused?: boolean; code: number }>;
  type(s: string): void;
}

function openTerm(hub: TestHub, id: string, q = 'cols=80&rows=24'): Term {
  const ws = new WebSocket(`${hub.url.replace('http', 'ws')}/api/v1/hosts/${id}/terminal?${q}`, { headers: { authorization: `Bearer ${hub.token}` } });
  let text = '';
  let exitMsg: { exitCode: number | null; reason?: string; refused?: boolean } | undefined;
  const opened = new Promise<{ pid: number; user: string }>((resolve, reject) => {
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string; data?: string; pid?: number; user?: string };
      if (m.type === 'output') text += m.data!;
      else if (m.type === 'opened') resolve({ pid: m.pid!, user: m.user! });
      else if (m.type === 'exit') {
        exitMsg = m as never;
        reject(new Error(`terminal ended: ${(m as { reason?: string }).reason}`));
      }
    });
  });
  opened.catch(() => {});
  const exit = new Promise<{ exitCode: number | null; reason?: string; refused?: boolean; code: number }>((resolve) => ws.on('close', (code) => resolve({ ...(exitMsg ?? { exitCode: null }), code })));
  return { ws, out: () => text, opened, exit, type: (s) => ws.send(JSON.stringify({ type: 'input', data: s })) };
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('web terminal', () => {
  let hub: TestHub;
  let agent: TestAgent;
  let id: string;
  before(async () => {
    hub = await TestHub.start();
    agent = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'terminal'], toml: TERMINAL_USER_TOML });
    id = await agent.waitConnected();
  });
  after(async () => {
    await agent.stop();
    agent.cleanup();
    await hub.cleanup();
  });

  test('commands run in a real pty; resize changes stty size; exit ends the session with its code', async () => {
    const t = openTerm(hub, id);
    const o = await t.opened;
    assert.ok(o.pid > 0);
    t.type('echo "sum=$((40+2))"; stty size\r');
    await waitFor(() => /sum=42/.test(t.out()) && /\b24 80\b/.test(t.out()), 'command output and size', 10_000);
    t.ws.send(JSON.stringify({ type: 'resize', cols: 132, rows: 43 }));
    t.type('stty size\r');
    await waitFor(() => /\b43 132\b/.test(t.out()), 'new size', 10_000);
    t.type('exit 7\r');
    const e = await t.exit;
    assert.equal(e.exitCode, 7);
    await waitFor(() => !alive(o.pid), 'shell gone');
  });

  test('a terminal runs as the first of terminal_users, with that user’s own groups; a user outside the list is refused', async () => {
    const t = openTerm(hub, id);
    const o = await t.opened;
    assert.equal(o.user, TERMINAL_USER);
    // From the shell's own /proc entry: uid and gid, and the supplementary groups a login would have
    // (its primary group and TERMINAL_USER_GROUP, which lists it), not the agent's.
    t.type('echo "who=$(id -un) groups=$(id -Gn | tr " " ,) home=$HOME"\r');
    await waitFor(() => /who=\S+ groups=\S+ home=\S+\r/.test(t.out()), 'id output', 10_000);
    const [, who, groups, home] = /who=(\S+) groups=(\S+) home=(\S+)\r/.exec(t.out())!;
    assert.equal(who, TERMINAL_USER);
    assert.deepEqual(groups!.split(',').sort(), [TERMINAL_USER, TERMINAL_USER_GROUP].sort());
    assert.equal(home, `/home/${TERMINAL_USER}`);
    const status = readFileSync(`/proc/${o.pid}/status`, 'utf8');
    assert.doesNotMatch(/^Groups:(.*)$/m.exec(status)![1]!, /(^|\s)0(\s|$)/, 'the root group is not among the shell’s groups');
    t.type('exit\r');
    await t.exit;

    // The hub names root: the agent's terminal_users does not list it, so the agent refuses.
    const r = openTerm(hub, id, 'cols=80&rows=24&user=root');
    await assert.rejects(r.opened, /opens terminals only as tether-term \(terminal_users in its local config\), not as root/);
    const e = await r.exit;
    assert.equal(e.refused, true);
  });

  test('closing the browser side ends the shell', async () => {
    const t = openTerm(hub, id);
    const { pid } = await t.opened;
    t.type('sleep 600\r');
    await new Promise((r) => setTimeout(r, 300));
    t.ws.close();
    await waitFor(() => !alive(pid), 'pty process ended after the browser left', 10_000);
  });

  test('a reader that stops reading holds the shell back: agent and hub memory stay bounded', async () => {
    const t = openTerm(hub, id);
    await t.opened;
    const agentPid = agent.proc.child.pid!;
    const hubPid = hub.proc.child.pid!;
    const before = { agent: rssKb(agentPid), hub: rssKb(hubPid) };
    // Stop reading the socket: TCP fills, the hub stops acknowledging, the agent pauses the pty.
    (t.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    t.type('yes tether-flow-control-check-line | head -c 400000000; echo DONE\r');
    await new Promise((r) => setTimeout(r, 4000));
    const during = { agent: rssKb(agentPid), hub: rssKb(hubPid) };
    assert.ok(during.agent - before.agent < 60_000, `agent RSS grew by ${during.agent - before.agent} KB while the reader was stalled`);
    assert.ok(during.hub - before.hub < 60_000, `hub RSS grew by ${during.hub - before.hub} KB while the reader was stalled`);
    // Held back, not dropped: 400 MB of `yes` would be done in a second; it is still running, blocked on the pty.
    const still = execFileSync('pgrep', ['-f', 'yes tether-flow-control-check-line'], { encoding: 'utf8' }).trim();
    assert.ok(still.length > 0, 'yes is still running: the agent stopped reading the pty');
    (t.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    t.type('\u0003');
    t.type('\recho AFTER-$((1+1))\r');
    await waitFor(() => /AFTER-2/.test(t.out()), 'the session goes on after the reader resumes', 30_000);
    t.ws.close();
  });

  test('an agent without the terminal capability refuses, whatever the hub sends', async () => {
    const other = TestAgent.start(hub.url, { token: await hub.enrollToken() });
    try {
      const oid = await other.waitConnected();
      const t = openTerm(hub, oid);
      await assert.rejects(t.opened, /does not allow terminal/);
      const e = await t.exit;
      assert.equal(e.refused, true);
      assert.equal(e.code, 4403);
    } finally {
      await other.stop();
      other.cleanup();
    }
  });

  test('every session is recorded (asciicast v2) and the recording replays the same output; audit has open and close', async () => {
    const t = openTerm(hub, id);
    await t.opened;
    t.type('printf "recorded %s\\n" "$((6*7))"\r');
    await waitFor(() => /recorded 42/.test(t.out()), 'output');
    t.type('exit\r');
    await t.exit;
    const { sessions } = await hub.api<{ sessions: { id: string; endedAt: number | null; bytesOut: number }[] }>('GET', `/api/v1/terminal/sessions?host=${id}`);
    const s = sessions[0]!;
    await waitFor(async () => (await hub.api<{ endedAt: number | null }>('GET', `/api/v1/terminal/sessions/${s.id}`)).endedAt !== null, 'session record closed');
    const r = await hub.raw('GET', `/api/v1/terminal/sessions/${s.id}/recording`);
    assert.equal(r.status, 200);
    const lines = (await r.text()).trim().split('\n');
    const header = JSON.parse(lines[0]!) as { version: number; width: number; height: number };
    assert.deepEqual([header.version, header.width, header.height], [2, 80, 24]);
    const events = lines.slice(1).map((l) => JSON.parse(l) as [number, string, string]);
    const replay = events.filter((e) => e[1] === 'o').map((e) => e[2]).join('');
    assert.equal(replay, t.out(), 'the recording holds exactly what the browser was shown');
    assert.match(events.filter((e) => e[1] === 'i').map((e) => e[2]).join(''), /printf "recorded/);
    for (let i = 1; i < events.length; i++) assert.ok(events[i]![0] >= events[i - 1]![0], 'timings never go back');
    const audit = await hub.api<{ entries: { action: string; targets: string[]; params: { sessionId?: string } }[] }>('GET', `/api/v1/audit?action=terminal.*&host=${id}`);
    const mine = audit.entries.filter((e) => e.params.sessionId === s.id).map((e) => e.action).sort();
    assert.deepEqual(mine, ['terminal.close', 'terminal.open']);
  });

  test('input sent in the same burst as term.open reaches the shell; a close sent before the pty is up still ends it', async () => {
    // Not our hub: a bare protocol server that sends open, input and (for the second session) close
    // back to back, so they arrive while the agent is still spawning the pty.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/api/v1/agent/ws' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const url = `http://127.0.0.1:${(wss.address() as { port: number }).port}`;
    const got: Message[] = [];
    wss.on('connection', (ws) => {
      ws.send(encodeFrame('challenge', { nonce: newNonce(), protocol: PROTOCOL_VERSION, hubVersion: 'fake' }));
      ws.on('message', (data) => {
        const d = decodeFrame(data as Buffer);
        if (!d.ok) return;
        if (d.msg.type === 'hello') {
          ws.send(encodeFrame('welcome', { agentId: 'fake-agent-term', heartbeatSec: 5, hubVersion: 'fake' }));
          const open = (sessionId: string): BodyOf<'term.open'> => ({ sessionId, cols: 80, rows: 24 });
          ws.send(encodeFrame('term.open', open('burst-0001')));
          ws.send(encodeFrame('term.input', { sessionId: 'burst-0001', data: 'echo "early-$((3*4))"\r' }));
          ws.send(encodeFrame('term.resize', { sessionId: 'burst-0001', cols: 101, rows: 33 }));
          ws.send(encodeFrame('term.input', { sessionId: 'burst-0001', data: 'stty size; exit 5\r' }));
          ws.send(encodeFrame('term.open', open('burst-0002')));
          ws.send(encodeFrame('term.close', { sessionId: 'burst-0002' }));
        }
        if (d.msg.type.startsWith('term.')) got.push(d.msg);
      });
    });
    const agent = TestAgent.start(url, { token: 'tte_fake-enrollment-token', capabilities: ['terminal'], toml: TERMINAL_USER_TOML });
    try {
      const exitOf = (id: string) => got.find((m) => m.type === 'term.exit' && (m.body as { sessionId: string }).sessionId === id)?.body as BodyOf<'term.exit'> | undefined;
      const e1 = await waitFor(() => exitOf('burst-0001'), 'burst-0001 exits', 20_000);
      const e2 = await waitFor(() => exitOf('burst-0002'), 'burst-0002 is ended', 20_000);
      const out = got.filter((m) => m.type === 'term.output' && (m.body as { sessionId: string }).sessionId === 'burst-0001').map((m) => (m.body as BodyOf<'term.output'>).data).join('');
      assert.match(out, /\rearly-12\r\n/, 'the first input ran');
      assert.match(out, /\r33 101\r\n/, 'the resize before the pty was up applied');
      assert.equal(e1.exitCode, 5);
      assert.equal(e2.exitCode, null);
      assert.equal(e2.reason, 'closed by the hub');
      assert.ok(got.some((m) => m.type === 'term.opened' && (m.body as { sessionId: string }).sessionId === 'burst-0002'), 'burst-0002 did open before it was closed');
    } finally {
      await agent.stop();
      agent.cleanup();
      for (const c of wss.clients) c.terminate();
      wss.close();
    }
  });

  test('tether ssh runs a terminal through the hub from the CLI', async () => {
    const dir = tempDir('tether-ssh-');
    const env = await hub.cliEnv(dir);
    const r = await cli(['ssh', id], env, 'echo "via-cli-$((2*3))"\nexit 3\n');
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stdout, /via-cli-6/);
  });
});
