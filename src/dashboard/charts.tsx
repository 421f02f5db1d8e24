import * as Plot from '@observablehq/plot';
import { useEffect, useRef, useState } from 'react';
import type { DayHealth, RunHealth } from './api.js';
import { useI18n } from './i18n/index.js';

/**
 * Pictures drawn with Observable Plot: SVG with an aria-label and an aria-description that say what a
 * sighted reader sees, sized to their container so they fit a 320-pixel phone.
 */

/** Colours readable on both the light and the dark theme. */
export const TONE = { ok: '#2e9e5b', bad: '#d64545', warn: '#d99a00', none: '#9aa4b5' } as const;

/** A chart that redraws at its container's width (a ResizeObserver), with the options built for that width. */
function PlotFigure({ build, className }: { build: (width: number) => Plot.PlotOptions; className?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const observer = new ResizeObserver(([entry]) => setWidth(Math.floor(entry?.contentRect.width ?? 0)));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  useEffect(() => {
    const element = box.current;
    if (!element || width === 0) return;
    const figure = Plot.plot({ ...build(width), width });
    element.replaceChildren(figure);
    return () => figure.remove();
  }, [build, width]);
  return <div ref={box} className={`chart ${className ?? ''}`} />;
}

/** Balance at the end of each day: a line over a light area. */
export function BalanceChart({
  name,
  currency,
  history,
}: {
  name: string;
  currency: string;
  history: { date: string; balance: string }[];
}) {
  const { t, money, day } = useI18n();
  const points = history.map((h) => ({ date: new Date(`${h.date}T00:00:00Z`), balance: Number(h.balance) }));
  const first = history[0];
  const last = history[history.length - 1];
  const build = (width: number): Plot.PlotOptions => ({
    height: 160,
    marginLeft: 56,
    marginRight: 16,
    ariaLabel: t('account.balances.chart', {
      name,
      days: history.length,
      first: first ? `${day(first.date)} ${money(first.balance, currency)}` : '',
      last: last ? `${day(last.date)} ${money(last.balance, currency)}` : '',
    }),
    x: { type: 'utc', ticks: width < 480 ? 3 : 6, label: null },
    y: { grid: true, label: null, tickFormat: (v: number) => compact(v), ticks: 4 },
    marks: [
      Plot.areaY(points, { x: 'date', y: 'balance', fill: TONE.ok, fillOpacity: 0.12, curve: 'step-after' }),
      Plot.lineY(points, { x: 'date', y: 'balance', stroke: TONE.ok, strokeWidth: 2, curve: 'step-after' }),
      Plot.tip(
        points,
        Plot.pointerX({
          x: 'date',
          y: 'balance',
          title: (p: { date: Date; balance: number }) => `${day(p.date.toISOString())}\n${money(p.balance, currency)}`,
        }),
      ),
    ],
  });
  return <PlotFigure build={build} />;
}

const compact = (value: number) => new Intl.NumberFormat(undefined, { notation: 'compact' }).format(value);

type DayTone = keyof typeof TONE;
/** A day's colour: any failure is red, else any wait for a code amber, else any success green. */
export function toneOfDay(d: DayHealth): DayTone {
  return d.failed > 0 ? 'bad' : d.waited > 0 ? 'warn' : d.succeeded > 0 ? 'ok' : 'none';
}

/** The last days as a strip of cells (one per day), the runs of each day in its tooltip. */
export function HealthStrip({ days, runs }: { days: DayHealth[]; runs: RunHealth[] }) {
  const { t, day, when, duration } = useI18n();
  const describeRun = (r: RunHealth) =>
    [
      t('account.health.run', {
        when: when(r.at),
        state: r.failure_category ? `${r.state} (${r.failure_category.replace(/_/g, ' ')})` : r.state,
      }),
      r.waited_ms !== null ? t('account.health.waited', { duration: duration(r.waited_ms) }) : '',
    ]
      .filter(Boolean)
      .join(', ');
  const cells = days.map((d) => ({
    date: d.date,
    tone: toneOfDay(d),
    title: [day(d.date), ...runs.filter((r) => r.at.slice(0, 10) === d.date).map(describeRun)].join('\n'),
  }));
  const summary = t('account.health.summary', {
    ok: sum(days, 'succeeded'),
    failed: sum(days, 'failed'),
    waited: sum(days, 'waited'),
    days: days.length,
  });
  const build = (): Plot.PlotOptions => ({
    height: 44,
    marginTop: 4,
    marginBottom: 18,
    marginLeft: 4,
    marginRight: 4,
    ariaLabel: summary,
    x: {
      type: 'band',
      padding: 0.15,
      label: null,
      tickFormat: (d: string) => (d === days[days.length - 1]?.date ? day(d) : ''),
      tickSize: 0,
    },
    marks: [Plot.cell(cells, { x: 'date', fill: (c: { tone: DayTone }) => TONE[c.tone], rx: 3, title: 'title' })],
  });
  return (
    <figure className="health">
      <PlotFigure build={build} />
      <figcaption className="muted small">{summary}</figcaption>
    </figure>
  );
}

const sum = (days: DayHealth[], key: 'succeeded' | 'failed' | 'waited') => days.reduce((n, d) => n + d[key], 0);

/** The accounts list's small picture: one bar per day, as tall as that day's logins, coloured like the strip. */
export function Sparkline({ days, label }: { days: DayHealth[]; label: string }) {
  const bars = days.map((d) => ({ date: d.date, runs: d.succeeded + d.failed, tone: toneOfDay(d) }));
  const build = (): Plot.PlotOptions => ({
    height: 24,
    margin: 0,
    ariaLabel: label,
    axis: null,
    x: { type: 'band', padding: 0.2 },
    // A day without logins still shows as a sliver on the baseline, so the 30 days read as a row.
    y: { domain: [0, Math.max(1, ...bars.map((b) => b.runs))] },
    marks: [
      Plot.ruleY([0], { stroke: TONE.none }),
      Plot.barY(bars, { x: 'date', y: 'runs', fill: (b: { tone: DayTone }) => TONE[b.tone] }),
    ],
  });
  return <PlotFigure build={build} className="spark" />;
}

/** Horizontal bars of median times (the Codes view). */
export function MedianBars({ rows, label }: { rows: { name: string; median_ms: number }[]; label: string }) {
  const { duration } = useI18n();
  const build = (width: number): Plot.PlotOptions => ({
    height: 28 * rows.length + 30,
    marginLeft: Math.min(160, width / 3),
    marginRight: 24,
    ariaLabel: `${label}: ${rows.map((r) => `${r.name} ${duration(r.median_ms)}`).join(', ')}`,
    x: { grid: true, label: null, tickFormat: (ms: number) => duration(ms), ticks: width < 480 ? 2 : 5 },
    y: {
      label: null,
      domain: rows.map((r) => r.name),
      tickFormat: (name: string) => clip(name, width < 480 ? 14 : 24),
    },
    marks: [
      Plot.barX(rows, {
        y: 'name',
        x: 'median_ms',
        fill: TONE.warn,
        title: (r: { name: string; median_ms: number }) => `${r.name}: ${duration(r.median_ms)}`,
      }),
      Plot.ruleX([0]),
    ],
  });
  return <PlotFigure build={build} />;
}

const clip = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
