/**
 * `tsx scripts/bench/profile-top.ts DIR|FILE… [--top N]`: where a V8 CPU profile's time went, from the files that
 * `pnpm bench --profile DIR` (or `node --cpu-prof`) wrote: self time by package (or Node's own code, or the
 * project's packages) and by function, largest first. Idle and garbage collection are their own rows.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
const top = Number(values.top);

/** The package a script belongs to: `node_modules/<name>` (scoped too), node's own, or the project's file. */
function packageOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  if (url.startsWith('node:')) return 'node';
  const inModules = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules) return inModules[1]!;
  const own = /packages\/([^/]+)\//.exec(url);
  return own ? `project: ${own[1]}` : url;
}

async function files(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) {
      out.push(...(await readdir(p)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)));
    } else out.push(p);
  }
  return out;
}

function table(title: string, totals: Map<string, number>, all: number) {
  console.log(`\n${title}`);
  for (const [key, us] of [...totals].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(0).padStart(8)} ms ${((100 * us) / all).toFixed(1).padStart(5)}%  ${key}`);
  }
}

for (const file of await files(positionals)) {
  const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byPackage = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let all = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const name = functionName || '(anonymous)';
    all += us;
    const pkg = packageOf(url, name);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
    const where = url ? `${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/packages\//, '')}:${lineNumber + 1}` : '';
    const fn = `${name} ${where}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  });
  console.log(`${file}: ${(all / 1000).toFixed(0)} ms sampled`);
  table('self time by package', byPackage, all);
  table('self time by function', byFunction, all);
}
