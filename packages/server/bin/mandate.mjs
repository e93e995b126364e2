#!/usr/bin/env node
// Runs the TypeScript CLI through tsx, so the package needs no build step. tsx reads the
// tsconfig.json of the working directory unless given a path, and the pages need the JSX
// settings of the repository's one, so it is named here for any working directory.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
