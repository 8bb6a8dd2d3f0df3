#!/usr/bin/env node
// The `sluice` command. Sources are TypeScript, loaded through tsx so that a checkout runs without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
