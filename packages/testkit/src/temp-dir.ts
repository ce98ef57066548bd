import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A new, empty directory under the system's temporary directory, named `<prefix>-<random>`. */
export const tempDir = (prefix: string) => mkdtemp(join(tmpdir(), `${prefix}-`));
