import { collectOnce, createCollectors, type HostUsage } from '@tether/agent';

/** One real usage report of this machine (two readings a second apart, so rates are filled in). */
export async function realUsage(): Promise<HostUsage> {
  const c = createCollectors({ enabled: { static: false, processes: false, connections: false, sensors: false, gpu: false, self: false } });
  await collectOnce(c);
  await new Promise((r) => setTimeout(r, 1000));
  return (await collectOnce(c)).report.usage!;
}
