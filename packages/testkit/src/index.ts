export * from './procs.js';
export * from './raw-agent.js';
