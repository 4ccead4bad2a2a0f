// Placeholder until the CLI lands; replaced by the real entry point.
export function run(): void {
  process.stdout.write('tsbuild 0.1.0\n');
}
