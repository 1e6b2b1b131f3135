export * from './common.js';
export * from './docker.js';
export * from './systemd.js';
export * from './processes.js';
export * from './cron.js';
export * from './power.js';
export * from './hostsfile.js';
