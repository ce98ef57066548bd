import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** tsx's loader by absolute URL, for `--import` in a child running TypeScript: `--import tsx` would resolve from the caller's working directory. */
export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
