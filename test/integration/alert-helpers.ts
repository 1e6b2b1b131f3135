/** Receivers for alert notifications, shared by the alert tests. */
import { createServer, type Server } from 'node:http';

export interface Received {
  headers: Record<string, string | string[] | undefined>;
  raw: string;
  body: any;
}

/** An HTTP receiver that records what it gets; `answer` decides the status per request. */
export async function receiver(answer: (n: number) => number = () => 200): Promise<{ server: Server; url: string; got: Received[] }> {
  const got: Received[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const status = answer(n++);
      if (status === 200) got.push({ headers: req.headers, raw, body: JSON.parse(raw || 'null') });
      res.writeHead(status, { 'content-type': 'application/json' }).end(status === 200 ? '{"ok":true}' : '{"error":"down"}');
    });
  }).listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  // A test that fails half-way must not keep the runner alive.
  server.unref();
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, got };
}

