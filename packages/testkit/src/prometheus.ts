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
  const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
  const samples = (name: string, labels: Record<string, string>): ParsedSample[] =>
    (families.get(name)?.metrics ?? []).filter((s) => Object.entries(labels).every(([k, v]) => (s.labels?.[k] ?? '') === v));
  return {
    type: (name) => families.get(name)?.type,
    value: (name, labels = {}) => samples(name, labels).reduce((total, s) => total + Number(s.value), 0),
    histogram: (name, labels = {}) =>
      samples(name, labels).reduce((h, s) => ({ count: h.count + Number(s.count), sum: h.sum + Number(s.sum) }), { count: 0, sum: 0 }),
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
