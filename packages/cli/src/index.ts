export const PACKAGE = '@tether/cli';
export { installLine, type InstallLineOptions } from './install-line.js';
