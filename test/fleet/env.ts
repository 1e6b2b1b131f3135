// What test/fleet/setup.sh prepared: the host image's tag, the engine's API socket. Tests fail
// (never skip) when it is missing, with the command that fixes it.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AGENT_NODE } from '@tether/testkit';
import { run } from './exec.js';

export interface FleetEnv {
  /** The repository root: mounted read-only into every host at /opt/tether. */
  root: string;
  /** Host image, e.g. localhost/tether-fleet-host:<recipe hash>. */
  image: string;
  /** Podman's Docker Engine API, unix://… */
  dockerHost: string;
  socket: string;
  /** The Node the suite's agents run on (testkit's AGENT_NODE: the agent artifact's runtime), mounted into every host at /usr/local/bin/node. */
  node: string;
}

/** The project's root: the nearest folder above this file with the workspaces package.json. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        const json = JSON.parse(readFileSync(pkg, 'utf8')) as { workspaces?: unknown };
        if (json.workspaces) return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error('fleet: project root (package.json with workspaces) not found');
    dir = up;
  }
}

const HINT = 'run `sudo bash test/fleet/setup.sh` first (installs Podman, builds the host image, starts the API)';

let cached: Promise<FleetEnv> | undefined;

/** Reads .fleet/env.json and checks that the engine and the image are really there. */
export function fleetEnv(): Promise<FleetEnv> {
  cached ??= load();
  return cached;
}

async function load(): Promise<FleetEnv> {
  const root = projectRoot();
  const file = join(root, '.fleet', 'env.json');
  if (!existsSync(file)) throw new Error(`fleet: ${file} is missing: ${HINT}`);
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Partial<FleetEnv>;
  if (!raw.image || !raw.socket || !raw.dockerHost) throw new Error(`fleet: ${file} is incomplete: ${HINT}`);
  if (process.getuid?.() !== 0) throw new Error('fleet: the fleet tests need root (podman, network namespaces)');
  const exists = await run('podman', ['image', 'exists', raw.image], { allowFailure: true }).catch((err: Error) => {
    throw new Error(`fleet: podman does not run (${err.message}): ${HINT}`);
  });
  if (exists.code !== 0) throw new Error(`fleet: image ${raw.image} is missing: ${HINT}`);
  return {
    root,
    image: raw.image,
    dockerHost: raw.dockerHost,
    socket: raw.socket,
    node: realpathSync(AGENT_NODE),
  };
}
