import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { MemorySealedStore } from '../src/sealed/store/memory.js';
import { PostgresSealedStore } from '../src/sealed/store/postgres.js';
import { SqliteSealedStore } from '../src/sealed/store/sqlite.js';
import { PG_URL, schemaForThisFile } from './postgres-helpers.js';
import { describeSealedStoreContract } from './sealed-store-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'sealed-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const schema = schemaForThisFile('sealed');

describeSealedStoreContract('memory', () => new MemorySealedStore());
describeSealedStoreContract('sqlite', () => new SqliteSealedStore(dir));
describeSealedStoreContract('postgres', () => new PostgresSealedStore(PG_URL, { schema }));
