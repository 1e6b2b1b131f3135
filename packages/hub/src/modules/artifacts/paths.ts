/**
 * Where the hub finds what it hands out for the one-line install, whether it runs from a checkout
 * (`packages/hub/dist/src/…` inside the repository) or from the hub artifact
 * (`tether-hub-<v>-linux-<arch>/lib/node_modules/@tether/hub/…`, scripts/package-hub.mjs):
 *  - agent artifacts: `artifacts_dir`, by default the checkout's `dist/artifacts` (where
 *    `npm run package:agent` writes them), or the `artifacts/` a hub artifact carries (both
 *    architectures' agents of its own version, read-only), else `<data>/artifacts`;
 *  - the installer: `install.sh` in `TETHER_PACKAGING_DIR` when set, else in `packaging/` inside
 *    the hub package (where a packaged hub carries it), else in the checkout's `packaging/`.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** packages/hub: this file is packages/hub/dist/src/modules/artifacts/paths.js */
export const HUB_PACKAGE_DIR = resolve(fileURLToPath(import.meta.url), '../../../../..');

/** The repository root when the hub runs from a checkout (packages/hub inside it), else undefined. */
export function checkoutRoot(): string | undefined {
  const root = resolve(HUB_PACKAGE_DIR, '../..');
  return basename(dirname(HUB_PACKAGE_DIR)) === 'packages' && existsSync(join(root, 'package.json')) && existsSync(join(root, 'packages', 'protocol')) ? root : undefined;
}

/** The hub artifact's top folder when the hub runs from one (its VERSION and artifacts/ beside lib/), else undefined. */
export function packagedRoot(): string | undefined {
  const top = resolve(HUB_PACKAGE_DIR, '../../../..');
  return basename(resolve(HUB_PACKAGE_DIR, '../../..')) === 'lib' && existsSync(join(top, 'VERSION')) && existsSync(join(top, 'artifacts')) ? top : undefined;
}

/** artifacts_dir's default: the checkout's dist/artifacts (existing yet or not), the hub artifact's artifacts/, else <data>/artifacts. */
export function defaultArtifactsDir(dataDir: string): string {
  const root = checkoutRoot();
  if (root) return join(root, 'dist', 'artifacts');
  const packaged = packagedRoot();
  return packaged ? join(packaged, 'artifacts') : join(dataDir, 'artifacts');
}

/** The places install.sh is looked for, first found wins. */
export function installerCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  if (env.TETHER_PACKAGING_DIR) return [join(resolve(env.TETHER_PACKAGING_DIR), 'install.sh')];
  const root = checkoutRoot();
  return [join(HUB_PACKAGE_DIR, 'packaging', 'install.sh'), ...(root ? [join(root, 'packaging', 'install.sh')] : [])];
}
