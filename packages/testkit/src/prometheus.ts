/**
 * Scrapes a `/metrics` endpoint and reads it with a Prometheus text-format parser (parse-prometheus-text-format):
 * the tests check what a Prometheus server would read, never the text with regexes.
 */
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format';
import { request } from 'undici';

export type MetricType = ParsedFamily['type'];

export interface Metrics {
  /** The family's type (`COUNTER`, `GAUGE`, `HISTOGRAM`…); undefined when it is not exposed. */
  type(name: string): MetricType | undefined;
  /** The sum of the samples of `name` whose labels include `labels` (0 when there are none). */
  value(name: string, labels?: Record<string, string>): number;
  /** A histogram's observation count and sum over the samples whose labels include `labels`. */
  histogram(name: string, labels?: Record<string, string>): { count: number; sum: number };
}

export function parseMetrics(text: string): Metrics {
  const types = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f.type]));
  // The parser folds a histogram's series into one sample and drops their labels (and, with labels, the _count and
  // _sum), so the samples are read from the text with the histograms' TYPE lines left out: each series (`x_bucket`,
  // `x_count`, `x_sum`) then parses as a plain sample with its labels.
  const untyped = text
    .split('\n')
    .filter((line) => !/^# TYPE \S+ histogram$/.test(line))
    .join('\n');
  const series = new Map<string, ParsedSample[]>();
  for (const family of parsePrometheusTextFormat(untyped)) series.set(family.name, [...(series.get(family.name) ?? []), ...family.metrics]);
  const sum = (name: string, labels: Record<string, string>) =>
    (series.get(name) ?? [])
      .filter((s) => Object.entries(labels).every(([k, v]) => (s.labels?.[k] ?? '') === v))
      .reduce((total, s) => total + Number(s.value), 0);
  return {
    type: (name) => types.get(name),
    value: (name, labels = {}) => sum(name, labels),
    histogram: (name, labels = {}) => ({ count: sum(`${name}_count`, labels), sum: sum(`${name}_sum`, labels) }),
  };
}

/** GET `<baseUrl>/metrics`; throws unless it answers 200 in the Prometheus text format. */
export async function scrapeMetrics(baseUrl: string, headers: Record<string, string> = {}): Promise<Metrics> {
  const res = await request(new URL('/metrics', baseUrl), { headers });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}: ${text.slice(0, 300)}`);
  const type = String(res.headers['content-type']);
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`/metrics answered content type ${type}`);
  return parseMetrics(text);
}
