/**
 * docker's table layout: Go's text/tabwriter as docker's formatter configures it
 * (`tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`): each column is as wide as its widest cell plus
 * 3 spaces, at least 10; the last cell of a row is not padded. Widths count characters (runes).
 */
export function tabwrite(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return;
      widths[i] = Math.max(widths[i] ?? 0, Math.max(10, Array.from(cell).length + 3));
    });
  }
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat((widths[i] ?? 0) - Array.from(cell).length))).join('') + '\n')
    .join('');
}
