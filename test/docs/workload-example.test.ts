/** The README's workload example is the file the embedded-workload test runs, verbatim. */
import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';

it("the README's counter example is packages/app-gateway/examples/counter.ts", async () => {
  const read = (path: string) => readFile(new URL(`../../${path}`, import.meta.url), 'utf8');
  const [readme, example] = await Promise.all([read('README.md'), read('packages/app-gateway/examples/counter.ts')]);
  expect(readme).toContain(`\`\`\`ts\n${example}\`\`\``);
});
