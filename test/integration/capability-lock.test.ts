/**
 * The agent's capability lock, proven against a hostile hub: a bare WebSocket server speaking the
 * protocol that welcomes the agent and then asks it for things its local config does not allow.
 * Nothing on the hub side filters here: whatever is refused, the agent refused.
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFrame } from '@tether/protocol';
import { TestAgent, bareHub, waitFor } from '@tether/testkit';

describe('capability lock (agent side)', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  for (const caps of [['metrics'], ['metrics', 'exec']]) {
    const allowed = caps.includes('exec');
    test(`an agent with capabilities [${caps}] ${allowed ? 'runs' : 'refuses'} exec whatever the hub sends`, async () => {
      const hub = await bareHub('evil');
      const dir = mkdtempSync(join(tmpdir(), 'tether-lock-'));
      const marker = join(dir, 'pwned');
      const agent = TestAgent.start(hub.url, { token: 'any-token-will-do', capabilities: caps });
      cleanups.push(async () => {
        await agent.stop();
        agent.cleanup();
        await hub.close();
        rmSync(dir, { recursive: true, force: true });
      });
      await agent.waitConnected();
      // The agent reports its lock in the handshake, and syncs tasks before anything else.
      const hello = hub.received.find((m) => m.type === 'hello')!;
      assert.deepEqual((hello.body as { capabilities: string[] }).capabilities, caps);
      await waitFor(() => hub.received.some((m) => m.type === 'task.sync'), 'task.sync');
      hub.send(encodeFrame('task.start', { taskId: 'evil-1', exec: { command: ['touch', marker] } }));
      hub.send(encodeFrame('task.start', { taskId: 'evil-2', exec: { command: [`touch ${marker}-sh`], shell: true, user: 'root' } }));
      const results = await waitFor(() => {
        const r = hub.received.filter((m) => m.type === 'task.result').map((m) => m.body as { taskId: string; status: string; error?: string });
        return r.length >= 2 ? r : undefined;
      }, 'two results');
      for (const r of results) {
        if (allowed) assert.equal(r.status, 'exited', JSON.stringify(r));
        else {
          assert.equal(r.status, 'refused');
          assert.match(r.error!, /does not allow exec/);
        }
      }
      assert.equal(existsSync(marker), allowed);
      assert.equal(existsSync(`${marker}-sh`), allowed);
      // Sending the same id again never runs it twice; the agent answers with what it has.
      const before = hub.received.filter((m) => m.type === 'task.result').length;
      hub.send(encodeFrame('task.start', { taskId: 'evil-1', exec: { command: ['touch', `${marker}-again`] } }));
      await waitFor(() => hub.received.filter((m) => m.type === 'task.result').length > before, 'the stored result again');
      assert.equal(existsSync(`${marker}-again`), false);
      if (allowed) return;
      // The same agent refuses files, docker, systemd, power and terminals too: none is in its list.
      hub.send(encodeFrame('file.request', { op: 'ls', path: '/' }, { id: 'f1' }));
      hub.send(encodeFrame('docker.request', { op: 'containers', all: true }, { id: 'd1' }));
      hub.send(encodeFrame('systemd.request', { op: 'list' } as never, { id: 's1' }));
      hub.send(encodeFrame('power.request', { op: 'reboot' } as never, { id: 'p1' }));
      hub.send(encodeFrame('term.open', { sessionId: 'evil-term-1', cols: 80, rows: 24 }));
      const answers = await waitFor(() => {
        const a = ['f1', 'd1', 's1', 'p1'].map((re) => hub.received.find((m) => m.re === re));
        const t = hub.received.find((m) => m.type === 'term.exit');
        return a.every(Boolean) && t ? { a, t } : undefined;
      }, 'refusals for files, docker, systemd, power and terminal');
      for (const m of answers.a) {
        const b = m!.body as { ok: boolean; error?: { code: string; message: string } };
        assert.equal(b.ok, false, `${m!.type}: ${JSON.stringify(b)}`);
        assert.equal(b.error!.code, 'refused', `${m!.type}: ${JSON.stringify(b)}`);
      }
      assert.equal((answers.t.body as { refused?: boolean }).refused, true);
    });
  }
});
