/**
 * Process command lines reach the hub redacted: a real agent lists the processes of its host (the
 * processes collector and `ps`), among them another agent started with its enrollment token on the
 * command line, as a careless operator might. Whatever every viewer can read must not hold it.
 * Command lines do not touch the database beyond the top-N rows, so one engine is enough here.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { TestAgent, TestHub, waitFor } from '@tether/testkit';

describe('process command lines', () => {
  let hub: TestHub;
  let lister: TestAgent;
  let programOnly: TestAgent;
  let careless: TestAgent;
  let token: string;
  let id: string;
  let programOnlyId: string;
  before(async () => {
    hub = await TestHub.start();
    lister = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'process'], env: { TETHER_COLLECTOR_INTERVALS: 'processes=1s' } });
    programOnly = TestAgent.start(hub.url, { token: await hub.enrollToken(), capabilities: ['metrics', 'process'], toml: 'process_cmdline = "none"' });
    token = await hub.enrollToken();
    careless = TestAgent.start(hub.url, { extraArgs: ['--token', token] });
    id = await lister.waitConnected();
    programOnlyId = await programOnly.waitConnected();
    await careless.waitConnected();
  });
  after(async () => {
    for (const a of [lister, programOnly, careless]) {
      await a.stop();
      a.cleanup();
    }
    await hub.cleanup();
  });

  test('an enrollment token on another process\'s command line reaches the hub as [redacted]; process_cmdline = "none" sends the program alone', async () => {
    const row = async (host: string) => {
      const r = await hub.api<{ processes: { pid: number; command: string }[] }>('GET', `/api/v1/hosts/${host}/ps`);
      const p = r.processes.find((x) => x.pid === careless.proc.pid);
      assert.ok(p, 'the careless agent is listed');
      return p.command;
    };
    const redacted = await row(id);
    assert.ok(!redacted.includes(token), redacted);
    assert.match(redacted, /agent --hub \S+ --state \S+ --reconnect-cap 1s --token \[redacted\]/);
    const bare = await row(programOnlyId);
    assert.ok(!bare.includes(' '), `the program alone: ${bare}`);
    assert.ok(!bare.includes(token));
    // The collector's own reports, kept by the hub for every viewer, hold no token either.
    await waitFor(async () => (await hub.api<{ processes?: unknown }>('GET', `/api/v1/hosts/${id}/latest`)).processes, 'a processes report');
    assert.ok(!JSON.stringify(await hub.api('GET', `/api/v1/hosts/${id}/latest`)).includes(token));
  });
});
