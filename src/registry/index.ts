export { RegistryClient, pullScope, pushScope, type RegistryClientOptions, type RequestSpec, type TimeoutOptions } from './client.js';
export { loadRegistriesConf, parseRegistriesConf, defaultRegistriesConfPath, type RegistriesConf, type MirrorEntry } from './mirrors.js';
export { RegistryError, type RegistryErrorOptions } from './errors.js';
export { parseChallenges, pickChallenge, type Challenge } from './challenge.js';
export {
  DockerConfigAuth,
  StaticAuth,
  HUB_AUTH_KEY,
  authKey,
  dockerConfigDir,
  readDockerConfig,
  type DockerConfigFile,
  type AuthEntry,
} from './dockerconfig.js';
export { login, logout, type LoginOptions } from './login.js';
export { resolveManifest, fetchManifest, selectPlatform, MANIFEST_ACCEPT, type ResolvedManifest } from './manifest.js';
export { pullImage, type PullOptions, type PullResult } from './pull.js';
export { pushImage, type PushImage, type PushOptions } from './push.js';
export { uploadBlob, type UploadOptions, type UploadOutcome } from './upload.js';
export { LiveUpload } from './upload-live.js';
export type { AuthProvider, BlobSink, BlobSource, Credentials, PlatformSpec, RetryOptions, TransferEvent } from './types.js';
export { MAX_MANIFEST_BYTES } from './types.js';
export { transferProgress, parseProgressMode, formatSize, type ProgressMode, type TransferAction, type TransferProgress } from './progress.js';
