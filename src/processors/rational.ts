/**
 * Exact rational numbers on BigInt, enough of Python's `fractions.Fraction` to replay
 * pytorchvideo's clip sampler bit for bit.
 * @module
 */

function gcd(a: bigint, b: bigint): bigint {
  let x = a < 0n ? -a : a;
  let y = b < 0n ? -b : b;
  while (y !== 0n) [x, y] = [y, x % y];
  return x;
}

/** An exact fraction num/den in lowest terms with den > 0, like Python's `Fraction`. */
export class Rational {
  readonly num: bigint;
  readonly den: bigint;

  constructor(num: bigint, den = 1n) {
    if (den === 0n) throw new RangeError('Rational with zero denominator');
    const sign = den < 0n ? -1n : 1n;
    const divisor = gcd(num, den) || 1n;
    this.num = (sign * num) / divisor;
    this.den = (sign * den) / divisor;
  }

  /** The exact value of a finite float64, as `Fraction(x)` / `x.as_integer_ratio()` give it. */
  static fromFloat(x: number): Rational {
    if (!Number.isFinite(x)) throw new RangeError(`cannot convert ${x} to a Rational`);
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, x);
    const bits = view.getBigUint64(0);
    const negative = bits >> 63n === 1n;
    const exponentBits = Number((bits >> 52n) & 0x7ffn);
    const fraction = bits & ((1n << 52n) - 1n);
    // value = mantissa · 2^(exponent) with the implicit leading 1 for normal numbers
    const mantissa = exponentBits === 0 ? fraction : fraction | (1n << 52n);
    const exponent = (exponentBits === 0 ? 1 : exponentBits) - 1075;
    const signed = negative ? -mantissa : mantissa;
    return exponent >= 0 ? new Rational(signed << BigInt(exponent)) : new Rational(signed, 1n << BigInt(-exponent));
  }

  add(other: Rational): Rational {
    return new Rational(this.num * other.den + other.num * this.den, this.den * other.den);
  }

  mul(other: Rational): Rational {
    return new Rational(this.num * other.num, this.den * other.den);
  }

  /** This divided by a non-zero integer (`Fraction(x, n)`). */
  divInt(n: number): Rational {
    return new Rational(this.num, this.den * BigInt(n));
  }

  /** Truncation toward zero, Python's `int(Fraction)`. */
  trunc(): bigint {
    return this.num / this.den;
  }

  /** `str(Fraction)`: "n" for integers, else "n/d". */
  toString(): string {
    return this.den === 1n ? `${this.num}` : `${this.num}/${this.den}`;
  }
}
