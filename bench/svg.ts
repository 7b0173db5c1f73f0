/**
 * @module bench/svg
 * The README's chart: one horizontal bar per scenario, ours/nginx (1.0 =
 * parity; every ratio oriented so that higher is better for the proxy), the
 * issue's goal as a tick, and a caption with the date, machine and command.
 * A plain string of SVG: no chart library for a dozen rectangles.
 * Must not: read results or files (run.ts hands it the rows).
 */

export interface ChartRow {
  label: string;
  /** ours / nginx, higher is better; NaN draws no bar. */
  ratio: number;
  /** The goal for the ratio, drawn as a tick. */
  goal?: number;
  /** Extra text right of the bar (e.g. "1 backend request"). */
  note?: string;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** Renders the chart; `caption` lines go under it. */
export function renderChart(title: string, rows: readonly ChartRow[], caption: readonly string[]): string {
  const labelW = 190;
  const barW = 420;
  const noteW = 230;
  const rowH = 26;
  const top = 44;
  const width = labelW + barW + noteW + 20;
  const height = top + rows.length * rowH + 30 + caption.length * 16 + 10;
  const max = Math.max(1.5, ...rows.map((r) => (Number.isFinite(r.ratio) ? r.ratio : 0)), ...rows.map((r) => r.goal ?? 0)) * 1.05;
  const x = (v: number) => labelW + (v / max) * barW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const v of [0, 0.5, 1, 1.5, 2, 2.5, 3].filter((t) => t <= max)) {
    out.push(`<line x1="${x(v).toFixed(1)}" y1="${top - 8}" x2="${x(v).toFixed(1)}" y2="${top + rows.length * rowH}" stroke="${v === 1 ? '#333' : '#ddd'}" stroke-width="${v === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${x(v).toFixed(1)}" y="${top - 12}" text-anchor="middle" fill="#555">${v.toFixed(1)}x</text>`);
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    out.push(`<text x="${labelW - 8}" y="${y + 16}" text-anchor="end">${esc(r.label)}</text>`);
    if (Number.isFinite(r.ratio)) {
      const met = r.goal === undefined || r.ratio >= r.goal;
      out.push(`<rect x="${labelW}" y="${y + 4}" width="${Math.max(1, x(r.ratio) - labelW).toFixed(1)}" height="${rowH - 8}" fill="${met ? '#3a7d44' : '#c0504d'}"/>`);
      out.push(`<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + 16}">${r.ratio.toFixed(2)}x</text>`);
    }
    if (r.goal !== undefined) out.push(`<line x1="${x(r.goal).toFixed(1)}" y1="${y + 1}" x2="${x(r.goal).toFixed(1)}" y2="${y + rowH - 1}" stroke="#000" stroke-width="2" stroke-dasharray="3,2"/>`);
    if (r.note) out.push(`<text x="${labelW + barW + 40}" y="${y + 16}" fill="#333">${esc(r.note)}</text>`);
  });
  const cy = top + rows.length * rowH + 24;
  out.push(`<text x="10" y="${cy}" fill="#555">green: goal met, red: missed, dashed: the issue's goal; 1.0x = nginx with as many workers</text>`);
  caption.forEach((c, i) => out.push(`<text x="10" y="${cy + 16 * (i + 1)}" fill="#555">${esc(c)}</text>`));
  out.push('</svg>');
  return out.join('\n') + '\n';
}
