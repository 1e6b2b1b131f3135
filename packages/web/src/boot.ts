/**
 * Evaluated before anything else in the bundle (main.tsx imports it first): asks the hub for what
 * the first page needs while React is still loading. The overview snapshot is asked only when the
 * page opens on the fleet overview.
 */
import { prefetch } from './api';

const route = location.hash.replace(/^#/, '').split('?')[0] || '/';
prefetch(['/api/v1/auth/me', ...(route === '/' ? ['/api/v1/metrics/overview'] : [])]);
