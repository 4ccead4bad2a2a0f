/**
 * docker's human formats, ported from github.com/docker/go-units so tables match docker's byte for byte:
 * `HumanSizeWithPrecision(size, 3)` (1000-based, `%.3g`) for SIZE columns and `HumanDuration(d) + " ago"`
 * for CREATED columns.
 */
const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Go's `fmt.Sprintf("%.*g", precision, v)` for finite non-negative numbers (e.g. 999.5 → "1e+03"). */
export function goFormatG(v: number, precision: number): string {
  if (v === 0) return '0';
  const p = Math.max(1, precision);
  const e0 = Number(v.toExponential(30).split('e')[1]);
  const decimals = p - 1 - e0;
  // Round to p significant digits the way Go does: on the exact value, ties to even.
  const rounded = decimals >= 0 ? roundHalfEven(v, decimals) : String(Math.round(v / 10 ** -decimals) * 10 ** -decimals);
  const exp = Number(Number(rounded).toExponential(30).split('e')[1]);
  if (exp < -4 || exp >= p) {
    const mant = stripZeros((Number(rounded) / 10 ** exp).toFixed(p - 1));
    return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return stripZeros(exp === e0 ? rounded : roundHalfEven(Number(rounded), Math.max(0, p - 1 - exp)));
}

/** `v` with `k` decimals, rounding its exact binary value half-to-even (JS's toFixed rounds ties up). */
function roundHalfEven(v: number, k: number): string {
  const exact = v.toFixed(Math.min(100, k + 60));
  const [int = '0', frac = ''] = exact.split('.');
  const kept = `${int}${frac.slice(0, k)}`;
  const next = frac.slice(k);
  const tie = next[0] === '5' && /^0*$/.test(next.slice(1));
  const up = next[0] !== undefined && (next[0] > '5' || (next[0] === '5' && (!tie || Number(kept.at(-1)) % 2 === 1)));
  const digits = (BigInt(kept) + (up ? 1n : 0n)).toString().padStart(k + 1, '0');
  return k === 0 ? digits : `${digits.slice(0, -k)}.${digits.slice(-k)}`;
}

function stripZeros(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** go-units `HumanSizeWithPrecision`: docker images/history use precision 3 ("4.26MB", "1.23kB", "0B"). */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${goFormatG(size, precision)}${DECIMAL_UNITS[i] ?? ''}`;
}

/** go-units `HumanDuration`. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** docker's CREATED column: "2 hours ago"; "N/A" when the image has no creation time. */
export function createdSince(iso: string | undefined, now: number = Date.now()): string {
  if (iso === undefined || Number.isNaN(Date.parse(iso)) || Date.parse(iso) <= 0) return 'N/A';
  return `${humanDuration(now - Date.parse(iso))} ago`;
}

/** docker's `stringutils.Ellipsis` for ASCII text: at most `max` characters, the last one `…`. */
export function ellipsis(s: string, max: number): string {
  const chars = Array.from(s);
  if (chars.length <= max) return s;
  return `${chars.slice(0, max - 1).join('')}…`;
}
