#!/usr/bin/env node
// Meltano runs a Singer target as one executable taking --config: this is
// `pgland singer` under the name Meltano users expect (docs/protocols.md).
process.argv.splice(2, 0, 'singer');
await import('./main.js');
