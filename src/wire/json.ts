/** A number as JSON.stringify writes it (non-finite numbers are null): for JSON text written by hand. */
export const jsonNumber = (n: number): string => (Number.isFinite(n) ? `${n}` : 'null');
