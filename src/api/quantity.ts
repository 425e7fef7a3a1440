/**
 * @module api/quantity
 * Kubernetes resource quantities (`10Gi`, `500M`, `1e9`, `1073741824`): the pattern the API server accepts and the
 * value in bytes, for fields whose size the renderer turns into a number (vLLM's `cpu_bytes_to_use`).
 */

/** The pattern Kubernetes' CRD generators give `resource.Quantity` fields. */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

const QUANTITY = new RegExp(QUANTITY_PATTERN);

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/**
 * The exact value of a quantity (`500m` → 0.5, `1Gi` → 1073741824, `2e3` → 2000); undefined when it is not one.
 * The server-side-apply comparison uses it to see `1Gi` and `1073741824` as the same value.
 */
export function parseQuantity(quantity: string | number): number | undefined {
  if (typeof quantity === 'number') return Number.isFinite(quantity) ? quantity : undefined;
  const text = quantity.trim();
  if (!QUANTITY.test(text)) return undefined;
  const match = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(.*)$/.exec(text)!;
  const suffix = match[2]!;
  let factor: number | undefined = BINARY[suffix] ?? DECIMAL[suffix];
  if (factor === undefined && /^[eE]/.test(suffix)) factor = 10 ** Number(suffix.slice(1));
  return factor === undefined ? undefined : Number(match[1]) * factor;
}

/**
 * The value of a quantity, rounded up to a whole number the way Kubernetes' `Quantity.Value()` does; undefined when
 * it is not a quantity.
 * @example quantityValue('10Gi') // 10737418240
 */
export function quantityValue(quantity: string | number): number | undefined {
  const value = parseQuantity(quantity);
  return value === undefined ? undefined : Math.ceil(value);
}
