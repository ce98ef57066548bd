export * from './schemas.js';
export * from './contract.js';
export * from './examples.js';
export * from './org-socket.js';
