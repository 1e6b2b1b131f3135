export const PACKAGE = '@tether/protocol';
