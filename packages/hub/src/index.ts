export const PACKAGE = '@tether/hub';
