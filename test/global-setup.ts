// Global vitest setup: nothing shared yet; services are started per suite.
export default function setup(): void {}
