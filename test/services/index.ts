export { startRegistry, type RunningRegistry, type RegistryMode, type RegistryUser, type StartRegistryOptions } from './registry.js';
export { startFaultProxy, type FaultProxy, type LoggedRequest } from './fault-proxy.js';
export { startTokenIssuer, type TokenIssuer } from './token-issuer.js';
export { makeServerCerts, makeCertsDir, makeClientCert, makeTokenSigner } from './certs.js';
export { freePort, run, tempDir, removeDir } from './util.js';
