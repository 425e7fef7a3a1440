/**
 * @module process
 * Child-process lifetime shared by the folders that start processes (dev/, local/): no child outlives this process.
 */
export { forgetChild, killOnExit, startWatchdog, type WatchdogOptions } from './children.js';
