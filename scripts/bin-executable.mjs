// After `tsc`, marks every `bin` entry of package.json executable: tsc writes files 0644, and
// `npx bitscale` in a fresh clone runs the bin target directly (sh: Permission denied otherwise).
import { chmodSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
for (const target of Object.values(pkg.bin ?? {})) chmodSync(target, 0o755);
