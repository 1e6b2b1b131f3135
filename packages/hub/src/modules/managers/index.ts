/**
 * Host managers: Docker, systemd, cron, processes and ports, power, the hosts file. No tables: every
 * call goes to the host's agent, which checks its own capability lock; mutations are audited by the
 * hub's audit hook like every other `/api` write.
 */
import type { FastifyInstance } from 'fastify';
import { Managers, type ManagersDeps } from './common.js';
import { dockerRoutes } from './docker.js';
import { systemdRoutes } from './systemd.js';
import { cronRoutes } from './cron.js';
import { hostManagerRoutes } from './host.js';

export { Managers };

export function managersRoutes(d: ManagersDeps) {
  const m = new Managers(d);
  return async function (app: FastifyInstance): Promise<void> {
    await app.register(dockerRoutes(m));
    await app.register(systemdRoutes(m));
    await app.register(cronRoutes(m));
    await app.register(hostManagerRoutes(m));
  };
}
