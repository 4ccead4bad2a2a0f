export { build, pull, push, inspect, history, images, openStoreFor, type BuildOptions, type PullOptions, type PushOptions, type RegistryOptions, type StoreOptions } from './api.js';
export { inspectImage, imageHistory, listImages, type HistoryEntry, type ImageInspect, type ImageSummary } from './inspect.js';
export { resolveLocal, loadImage, tagsOf, safeRef, type LocalImage } from './local.js';
