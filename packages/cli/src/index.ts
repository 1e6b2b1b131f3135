export const PACKAGE = '@tether/cli';
