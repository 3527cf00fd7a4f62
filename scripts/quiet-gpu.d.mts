// Types for quiet-gpu.mjs (plain JavaScript: it wraps commands that run before the build), for its test.
export function noiseFilter(): (line: string) => boolean;
