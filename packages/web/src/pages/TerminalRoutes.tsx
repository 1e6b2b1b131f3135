/** The terminal pages, loaded on first use so xterm.js stays out of the main bundle. */
import { lazy, Suspense, type ComponentProps } from 'react';
import { Loading } from '../ui';

const mod = () => import('./Terminal');
const Term = lazy(() => mod().then((m) => ({ default: m.TerminalPage })));
const Sessions = lazy(() => mod().then((m) => ({ default: m.TerminalSessionsPage })));
const Replay = lazy(() => mod().then((m) => ({ default: m.ReplayPage })));

type TermProps = ComponentProps<typeof import('./Terminal').TerminalPage>;

export const TerminalPage = (p: TermProps) => (
  <Suspense fallback={<Loading />}>
    <Term {...p} />
  </Suspense>
);
export const TerminalSessionsPage = () => (
  <Suspense fallback={<Loading />}>
    <Sessions />
  </Suspense>
);
export const ReplayPage = (p: { id: string }) => (
  <Suspense fallback={<Loading />}>
    <Replay {...p} />
  </Suspense>
);
