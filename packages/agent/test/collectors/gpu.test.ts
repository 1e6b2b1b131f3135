// GPU: the nvidia-smi CSV parser on sample output (this machine has no NVIDIA GPU), the execFile
// path through stand-in scripts, and the DRM / no-GPU path for real.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { drmCards, findExecutable, gpuCollector, NVIDIA_QUERY_FIELDS, parseNvidiaSmiCsv } from '../../src/collectors/gpu.js';
import { fakeTree } from './helpers.js';

const roots = { procRoot: '/proc', sysRoot: '/sys', etcRoot: '/etc', utmpPath: '/var/run/utmp' };

// Parser sample, written for this test in the shape of
// `nvidia-smi --query-gpu=index,uuid,name,driver_version,utilization.gpu,utilization.memory,memory.total,
//  memory.used,temperature.gpu,power.draw,power.limit,fan.speed,clocks.sm --format=csv,noheader,nounits`:
// a datacenter board with no fan, and a desktop board whose power reading is unavailable.
const SAMPLE = [
  '0, GPU-5f1b3c2e-8a4d-4e0f-9b7a-1c2d3e4f5a6b, NVIDIA H100 80GB HBM3, 550.54.15, 87, 41, 81559, 40960, 52, 412.37, 700.00, [N/A], 1980',
  '1, GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9, NVIDIA GeForce RTX 3060, 535.183.01, 3, 1, 12288, 512, 38, [Not Supported], 170.00, 30, 210',
  '',
].join('\n');

test('nvidia-smi CSV parser: values, units (MiB → bytes) and unsupported fields', () => {
  assert.equal(NVIDIA_QUERY_FIELDS.length, 13);
  const gpus = parseNvidiaSmiCsv(SAMPLE);
  assert.equal(gpus.length, 2);
  assert.deepEqual(gpus[0], {
    index: 0, name: 'NVIDIA H100 80GB HBM3', vendor: 'nvidia', uuid: 'GPU-5f1b3c2e-8a4d-4e0f-9b7a-1c2d3e4f5a6b',
    driver: 'nvidia', driverVersion: '550.54.15', utilizationPercent: 87, memoryUtilizationPercent: 41,
    memoryTotalBytes: 81559 * 1024 * 1024, memoryUsedBytes: 40960 * 1024 * 1024, temperatureCelsius: 52,
    powerWatts: 412.37, powerLimitWatts: 700, smClockMhz: 1980,
  });
  // (deepEqual above: the [N/A] fan is absent, not 0)
  assert.equal(gpus[1]?.powerWatts, undefined, '[Not Supported] power is absent');
  assert.equal(gpus[1]?.fanPercent, 30);
  assert.deepEqual(parseNvidiaSmiCsv('garbage\nNo devices were found\n'), []);
});

test('no nvidia-smi and no DRM card on this machine: source none, empty list, no error', async () => {
  const onPath = findExecutable('nvidia-smi');
  const cards = existsSync('/sys/class/drm') ? readdirSync('/sys/class/drm').filter((c) => /^card\d+$/.test(c)) : [];
  const r = await gpuCollector(roots).collect(Date.now());
  assert.ok(r);
  if (!onPath) {
    assert.equal(r.source, cards.length ? 'drm' : 'none');
    assert.equal(r.gpus.length, cards.length);
    assert.equal(r.error, undefined);
  }
});

test('DRM cards: vendor and device ids and driver from sysfs, amdgpu figures when present', () => {
  const t = fakeTree();
  try {
    t.write('class/drm/card0/device/vendor', '0x1af4\n');
    t.write('class/drm/card0/device/device', '0x1050\n');
    t.write('class/drm/card0/device/uevent', 'DRIVER=virtio-pci\nPCI_CLASS=30000\n');
    t.write('class/drm/card0-Virtual-1/status', 'connected\n');
    t.write('class/drm/renderD128/dev', '226:128\n');
    t.write('class/drm/card1/device/vendor', '0x1002\n');
    t.write('class/drm/card1/device/device', '0x73bf\n');
    t.write('class/drm/card1/device/uevent', 'DRIVER=amdgpu\n');
    t.write('class/drm/card1/device/gpu_busy_percent', '12\n');
    t.write('class/drm/card1/device/mem_info_vram_total', '17163091968\n');
    t.write('class/drm/card1/device/mem_info_vram_used', '1073741824\n');
    const cards = drmCards(t.root);
    assert.deepEqual(cards, [
      { index: 0, name: 'virtio-pci card0', vendor: 'virtio', card: 'card0', pciVendorId: '0x1af4', pciDeviceId: '0x1050', driver: 'virtio-pci' },
      {
        index: 1, name: 'amdgpu card1', vendor: 'amd', card: 'card1', pciVendorId: '0x1002', pciDeviceId: '0x73bf', driver: 'amdgpu',
        utilizationPercent: 12, memoryTotalBytes: 17163091968, memoryUsedBytes: 1073741824,
      },
    ]);
  } finally {
    t.cleanup();
  }
});

test('nvidia-smi is run with the query and format arguments; a failing or hanging one falls back to DRM with the error', async () => {
  const t = fakeTree();
  try {
    // stand-ins for the binary: one echoes the sample if called with the expected arguments
    t.write('good', `#!/bin/sh\n[ "$1" = "--query-gpu=${NVIDIA_QUERY_FIELDS.join(',')}" ] && [ "$2" = "--format=csv,noheader,nounits" ] || exit 3\ncat <<'EOF'\n${SAMPLE}EOF\n`);
    t.write('bad', '#!/bin/sh\necho "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2\nexit 9\n');
    t.write('hang', '#!/bin/sh\nexec sleep 10\n');
    const { chmodSync } = await import('node:fs');
    for (const f of ['good', 'bad', 'hang']) chmodSync(`${t.root}/${f}`, 0o755);
    const good = await gpuCollector(roots, { nvidiaSmi: `${t.root}/good` }).collect(Date.now());
    assert.equal(good?.source, 'nvidia-smi');
    assert.equal(good?.gpus.length, 2);
    const bad = await gpuCollector({ ...roots, sysRoot: t.root }, { nvidiaSmi: `${t.root}/bad` }).collect(Date.now());
    assert.equal(bad?.source, 'none');
    assert.match(bad?.error ?? '', /Command failed/);
    const started = Date.now();
    const hang = await gpuCollector({ ...roots, sysRoot: t.root }, { nvidiaSmi: `${t.root}/hang`, timeoutMs: 300 }).collect(Date.now());
    assert.ok(Date.now() - started < 3000, 'the timeout stops it');
    assert.equal(hang?.source, 'none');
    assert.ok(hang?.error);
  } finally {
    t.cleanup();
  }
});
