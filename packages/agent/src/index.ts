export const PACKAGE = '@tether/agent';
