/**
 * The agent's identity lives in its state directory: an Ed25519 private key (0600) that never
 * leaves the host, and the id the hub assigned at enrollment.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateAgentKey, publicKeyFromPrivatePem } from '@tether/protocol';

export interface Identity {
  privateKeyPem: string;
  publicKey: string;
  agentId?: string;
  hubUrl?: string;
}

const KEY_FILE = 'agent.key';
const ID_FILE = 'identity.json';

export function writePrivate(path: string, data: string): void {
  const tmp = path + '.tmp';
  writeFileSync(tmp, data, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function loadOrCreateIdentity(stateDir: string): Identity {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const keyPath = join(stateDir, KEY_FILE);
  let privateKeyPem: string;
  if (existsSync(keyPath)) {
    privateKeyPem = readFileSync(keyPath, 'utf8');
  } else {
    privateKeyPem = generateAgentKey().privateKeyPem;
    writePrivate(keyPath, privateKeyPem);
  }
  const id: Identity = { privateKeyPem, publicKey: publicKeyFromPrivatePem(privateKeyPem) };
  const idPath = join(stateDir, ID_FILE);
  if (existsSync(idPath)) {
    const saved = JSON.parse(readFileSync(idPath, 'utf8')) as { agentId?: string; hubUrl?: string };
    if (saved.agentId) id.agentId = saved.agentId;
    if (saved.hubUrl) id.hubUrl = saved.hubUrl;
  }
  return id;
}

/**
 * `status.json` in the state directory: whether this process is connected to its hub now. install.sh
 * waits on it (the host is online when `state` is "online" and `pid` is the service's main pid).
 */
export function writeStatus(stateDir: string, status: { state: 'online' | 'offline'; agentId?: string; hub: string; version: string; why?: string }): void {
  try {
    writePrivate(join(stateDir, 'status.json'), JSON.stringify({ ...status, pid: process.pid, at: new Date().toISOString() }) + '\n');
  } catch {
    /* a read-only or full state directory must not stop the agent */
  }
}

export function saveAgentId(stateDir: string, agentId: string, hubUrl: string): void {
  writePrivate(join(stateDir, ID_FILE), JSON.stringify({ agentId, hubUrl, enrolledAt: new Date().toISOString() }, null, 2) + '\n');
}
