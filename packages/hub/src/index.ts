export * from './config.js';
export * from './server.js';
export * from './log.js';
export { openDatabase, parseDbUrl, type DbHandle } from './db/database.js';
export { migrate } from './db/migrate.js';
export { HostStore, type Host } from './modules/hosts/store.js';
export { EnrollStore, type EnrollToken } from './modules/enroll/store.js';
export { AuthStore } from './modules/auth/store.js';
export { AgentLink } from './modules/agents/link.js';
