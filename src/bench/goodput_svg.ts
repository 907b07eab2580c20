/**
 * A small SVG log-log plot of goodput against loss (docs/goodput.svg): the
 * measured points per algorithm and RTT, and the theoretical curves (Mathis,
 * CUBIC's response, both capped at the link rate) for each RTT. Hand-written
 * (no plotting library): decades on both axes, labelled, with a legend.
 *
 * Pure function of its input; no I/O.
 */

export interface PlotPoint {
  cc: string;
  rttMs: number;
  loss: number;
  mbps: number;
}

export interface PlotCurve {
  label: string;
  rttMs: number;
  /** 'mathis' | 'cubic' | 'link': the line style. */
  kind: 'mathis' | 'cubic' | 'link';
  /** Mbit/s at loss p. */
  f: (p: number) => number;
}

const W = 720;
const H = 480;
const ML = 70;
const MR = 190;
const MT = 30;
const MB = 55;
const X0 = -4; // log10 loss range
const X1 = -1;
const Y0 = -1; // log10 Mbit/s range
const Y1 = 3;
const COLORS: Record<number, string> = { 10: '#1f77b4', 50: '#d62728' };

const px = (p: number): number => ML + ((Math.log10(p) - X0) / (X1 - X0)) * (W - ML - MR);
const py = (v: number): number => MT + (1 - (Math.log10(Math.max(v, 10 ** Y0)) - Y0) / (Y1 - Y0)) * (H - MT - MB);
const color = (rtt: number): string => COLORS[rtt] ?? '#555';
const f1 = (x: number): string => x.toFixed(1);

/** Axes with decade ticks and labels. */
function axes(): string[] {
  const o: string[] = [];
  o.push(`<rect x="${ML}" y="${MT}" width="${W - ML - MR}" height="${H - MT - MB}" fill="none" stroke="#000"/>`);
  for (let e = X0; e <= X1; e++) {
    const x = f1(px(10 ** e));
    o.push(`<line x1="${x}" y1="${MT}" x2="${x}" y2="${H - MB}" stroke="#ddd"/>`);
    o.push(`<text x="${x}" y="${H - MB + 18}" text-anchor="middle">${(10 ** e * 100).toPrecision(1)}%</text>`);
  }
  for (let e = Y0; e <= Y1; e++) {
    const y = f1(py(10 ** e));
    o.push(`<line x1="${ML}" y1="${y}" x2="${W - MR}" y2="${y}" stroke="#ddd"/>`);
    o.push(`<text x="${ML - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(1)}</text>`);
  }
  o.push(`<text x="${(ML + W - MR) / 2}" y="${H - 12}" text-anchor="middle">random loss p (data direction)</text>`);
  o.push(`<text x="18" y="${(MT + H - MB) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(MT + H - MB) / 2})">goodput, Mbit/s</text>`);
  return o;
}

const DASH: Record<PlotCurve['kind'], string> = { mathis: '6 4', cubic: '2 3', link: '' };

/** The plot as an SVG document. */
export function goodputSvg(title: string, points: readonly PlotPoint[], curves: readonly PlotCurve[]): string {
  const o: string[] = [];
  o.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  o.push(`<rect width="${W}" height="${H}" fill="#fff"/>`);
  o.push(`<text x="${ML}" y="18" font-size="14">${title}</text>`);
  o.push(...axes());
  for (const c of curves) {
    const pts: string[] = [];
    for (let i = 0; i <= 60; i++) {
      const p = 10 ** (X0 + ((X1 - X0) * i) / 60);
      pts.push(`${f1(px(p))},${f1(py(c.f(p)))}`);
    }
    const stroke = c.kind === 'link' ? '#777' : color(c.rttMs);
    o.push(`<polyline fill="none" stroke="${stroke}" stroke-width="1.5" stroke-dasharray="${DASH[c.kind]}" points="${pts.join(' ')}"/>`);
  }
  for (const p of points) {
    if (p.loss <= 0) continue;
    const x = f1(px(p.loss));
    const y = f1(py(p.mbps));
    const c = color(p.rttMs);
    if (p.cc === 'cubic') o.push(`<rect x="${f1(px(p.loss) - 4)}" y="${f1(py(p.mbps) - 4)}" width="8" height="8" fill="${c}"/>`);
    else o.push(`<circle cx="${x}" cy="${y}" r="4.5" fill="none" stroke="${c}" stroke-width="2"/>`);
  }
  // Legend.
  const lx = W - MR + 15;
  let ly = MT + 10;
  const line = (dash: string, stroke: string, text: string): void => {
    o.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${stroke}" stroke-width="1.5" stroke-dasharray="${dash}"/><text x="${lx + 34}" y="${ly}" dominant-baseline="middle">${text}</text>`);
    ly += 18;
  };
  const rtts = [...new Set(points.map((p) => p.rttMs))].sort((a, b) => a - b);
  for (const r of rtts) {
    const c = color(r);
    o.push(`<circle cx="${lx + 14}" cy="${ly}" r="4.5" fill="none" stroke="${c}" stroke-width="2"/><text x="${lx + 34}" y="${ly}" dominant-baseline="middle">newreno, ${r} ms</text>`);
    ly += 18;
    o.push(`<rect x="${lx + 10}" y="${ly - 4}" width="8" height="8" fill="${c}"/><text x="${lx + 34}" y="${ly}" dominant-baseline="middle">cubic, ${r} ms</text>`);
    ly += 18;
    line(DASH.mathis, c, `Mathis, ${r} ms`);
    line(DASH.cubic, c, `CUBIC resp., ${r} ms`);
    ly += 6;
  }
  line('', '#777', 'link rate');
  o.push('</svg>');
  return o.join('\n') + '\n';
}
