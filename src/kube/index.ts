/**
 * @module kube
 * Talking to the Kubernetes API: client, server-side apply, discovery, informers, work queue, leader election and
 * the CRD watcher. Nothing here knows about LLMInferenceService.
 */
export * from './client.js';
export * from './resources.js';
export * from './discovery.js';
export * from './informer.js';
export * from './work-queue.js';
export * from './apply.js';
export * from './leader-election.js';
export * from './crd-watcher.js';
