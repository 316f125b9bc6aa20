//! Resource quantities (`100m`, `64Mi`, `1.5`, `1e3`), parsed exactly as
//! `k8s.io/apimachinery/pkg/api/resource.Quantity` parses them and printed in its canonical form.
//!
//! A [`Quantity`] holds an exact decimal, `mantissa × 10^exponent` (an `i128` and an `i32`, with no
//! trailing zeros in the mantissa), and the format it was written in, which only affects how it
//! prints. As in Kubernetes:
//!
//! - suffixes are binary (`Ki Mi Gi Ti Pi Ei`), decimal (`n u m k M G T P E`) or an exponent
//!   (`e3`, `E-2`); a sign and forms like `.5` and `5.` are accepted;
//! - values are rounded up (away from zero) to nano precision, so `0.1n` is `1n`;
//! - binary quantities above `2^63 - 1` are capped there;
//! - comparison is by value whatever the format: `1000m == 1`, `1Gi > 1G`;
//! - printing canonicalizes: `1.5` prints `1500m`, `1024Mi` prints `1Gi`, `1000` prints `1k`.
//!
//! Inputs too long to hold exactly in an `i128` (more than 38 significant digits) are rejected
//! with an error rather than approximated.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

/// How a quantity is written, which decides how it prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `1e3`, `12e-6`.
    DecimalExponent,
    /// `Ki`, `Mi`, …: powers of 1024.
    BinarySI,
    /// `m`, `k`, `M`, …: powers of 1000.
    DecimalSI,
}

/// Why a quantity could not be parsed. The first three messages are Kubernetes' own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error(
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )]
    FormatWrong,
    #[error("unable to parse quantity's suffix")]
    Suffix,
    #[error("unable to parse numeric part of quantity")]
    Numeric,
    /// More significant digits than an `i128` holds, or an exponent beyond `i32`.
    #[error(
        "quantity {0:?} has too many significant digits or too large an exponent to be represented exactly"
    )]
    OutOfRange(String),
}

/// An exact resource quantity. See the [module documentation](self).
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    /// No trailing decimal zeros unless zero.
    mantissa: i128,
    /// Zero when the mantissa is zero.
    exponent: i32,
    format: Format,
}

/// Parse a quantity string (`ParseQuantity`).
pub fn parse_quantity(s: &str) -> Result<Quantity, QuantityError> {
    Quantity::parse(s)
}

/// The largest binary quantity; larger ones are capped to it, as Kubernetes caps them.
const MAX_BINARY: i128 = i64::MAX as i128;
/// Kubernetes keeps nine decimal places (nano) and rounds the rest up.
const NANO_EXPONENT: i64 = -9;
/// Every 38-digit number fits in an `i128`.
const MAX_DIGITS: usize = 38;

impl Quantity {
    /// Zero (`0`), in decimal SI format.
    pub fn zero() -> Quantity {
        Quantity {
            mantissa: 0,
            exponent: 0,
            format: Format::DecimalSI,
        }
    }

    /// A whole number in the given format (`NewQuantity`).
    pub fn new(value: i64, format: Format) -> Quantity {
        Quantity::from_parts(i128::from(value), 0, format).unwrap_or_else(Quantity::zero)
    }

    /// Thousandths (`NewMilliQuantity`): `from_milli(1500, DecimalSI)` is `1500m`.
    pub fn from_milli(milli: i64, format: Format) -> Quantity {
        Quantity::from_parts(i128::from(milli), -3, format).unwrap_or_else(Quantity::zero)
    }

    /// `mantissa × 10^exponent`, normalized; `None` if the exponent leaves the `i32` range (or
    /// the mantissa is `i128::MIN`, which could not be negated).
    fn from_parts(mut mantissa: i128, exponent: i64, format: Format) -> Option<Quantity> {
        if mantissa == i128::MIN {
            return None;
        }
        if mantissa == 0 {
            return Some(Quantity {
                mantissa: 0,
                exponent: 0,
                format,
            });
        }
        let mut exponent = exponent;
        while mantissa % 10 == 0 {
            mantissa /= 10;
            exponent += 1;
        }
        let exponent = i32::try_from(exponent).ok()?;
        Some(Quantity {
            mantissa,
            exponent,
            format,
        })
    }

    /// `ParseQuantity`: see the [module documentation](self).
    pub fn parse(s: &str) -> Result<Quantity, QuantityError> {
        if s.is_empty() {
            return Err(QuantityError::FormatWrong);
        }
        if s == "0" {
            return Ok(Quantity::zero());
        }
        let parts = split_quantity(s)?;
        let (base, exponent, mut format) = interpret_suffix(parts.suffix)?;
        let out_of_range = || QuantityError::OutOfRange(s.to_string());

        // The significant digits, without leading or trailing zeros; `shift` is the power of ten
        // they are multiplied by before the suffix is applied.
        let all: Vec<u8> = parts.num.bytes().chain(parts.denom.bytes()).collect();
        let first_nonzero = all.iter().position(|&d| d != b'0');
        let Some(first) = first_nonzero else {
            // Kubernetes feeds a digitless number ("." or "-") to a decimal parser only when the
            // exponent is below nano, and that parser rejects it.
            if !parts.has_digits && base == 10 && i64::from(exponent) < NANO_EXPONENT {
                return Err(QuantityError::Numeric);
            }
            return Ok(Quantity {
                mantissa: 0,
                exponent: 0,
                format,
            });
        };
        let last_nonzero = all.iter().rposition(|&d| d != b'0').unwrap_or(first);
        let mut digits = &all[first..=last_nonzero];
        let trailing_zeros = (all.len() - 1 - last_nonzero) as i64;
        let shift = trailing_zeros - parts.denom.len() as i64;

        let magnitude: i128;
        let exp10: i64;
        if base == 10 {
            let mut e = shift + i64::from(exponent);
            let mut round_up = false;
            if e < NANO_EXPONENT {
                // Drop the digits below nano; the last digit is non-zero, so something is always
                // dropped and the kept part rounds up (away from zero).
                let drop = NANO_EXPONENT - e;
                round_up = true;
                digits = if drop >= digits.len() as i64 {
                    &[][..]
                } else {
                    &digits[..digits.len() - drop as usize]
                };
                e = NANO_EXPONENT;
            }
            let kept = digits_to_i128(digits).ok_or_else(out_of_range)?;
            magnitude = if round_up {
                kept.checked_add(1).ok_or_else(out_of_range)?
            } else {
                kept
            };
            exp10 = e;
        } else {
            // value = digits × 10^shift × 2^exponent, exactly, then rounded to nano and capped.
            let d = digits_to_i128(digits).ok_or_else(out_of_range)?;
            let scaled = 1i128
                .checked_shl(exponent as u32)
                .and_then(|p| d.checked_mul(p));
            if shift >= 0 {
                // A whole number of at least 1024: anything that does not fit is over the cap.
                magnitude = scaled
                    .and_then(|m| pow10(shift).and_then(|p| m.checked_mul(p)))
                    .map_or(MAX_BINARY, |m| m.min(MAX_BINARY));
                exp10 = 0;
            } else {
                let m = scaled.ok_or_else(out_of_range)?;
                if shift < NANO_EXPONENT {
                    let (q, r) = div_pow10(m, NANO_EXPONENT - shift);
                    magnitude = if r != 0 { q + 1 } else { q };
                    exp10 = NANO_EXPONENT;
                } else {
                    magnitude = m;
                    exp10 = shift;
                }
                if cmp_magnitude(magnitude, exp10, MAX_BINARY, 0) == Ordering::Greater {
                    return Ok(Quantity::from_parts(
                        if parts.positive {
                            MAX_BINARY
                        } else {
                            -MAX_BINARY
                        },
                        0,
                        format,
                    )
                    .unwrap_or_else(Quantity::zero));
                }
                if cmp_magnitude(magnitude, exp10, 1, 0) == Ordering::Less {
                    // A binary quantity below one prints in decimal SI.
                    format = Format::DecimalSI;
                }
            }
        }
        let signed = if parts.positive {
            magnitude
        } else {
            -magnitude
        };
        Quantity::from_parts(signed, exp10, format).ok_or_else(out_of_range)
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// -1, 0 or 1.
    pub fn signum(&self) -> i32 {
        self.mantissa.signum() as i32
    }

    /// `MilliValue`: the value in thousandths, rounded up in magnitude (away from zero) as
    /// Kubernetes rounds it: `0.1m` gives 1, `-0.1m` gives -1. Saturates at the `i64` bounds.
    pub fn to_milli_ceil(&self) -> i64 {
        self.scaled_ceil(3)
    }

    /// `Value`: the value rounded up in magnitude to a whole number (`1500m` gives 2).
    /// Saturates at the `i64` bounds.
    pub fn to_value_ceil(&self) -> i64 {
        self.scaled_ceil(0)
    }

    /// An approximation as a float, for scoring and ratios.
    pub fn to_f64(&self) -> f64 {
        format!("{}e{}", self.mantissa, self.exponent)
            .parse()
            .unwrap_or(0.0)
    }

    /// `value × 10^places`, rounded away from zero, saturating.
    fn scaled_ceil(&self, places: i64) -> i64 {
        let magnitude = self.mantissa.unsigned_abs();
        let shift = i64::from(self.exponent) + places;
        let scaled: Option<u128> = if shift >= 0 {
            pow10_u128(shift).and_then(|p| magnitude.checked_mul(p))
        } else {
            let (q, r) = div_pow10_u128(magnitude, -shift);
            Some(if r != 0 { q + 1 } else { q })
        };
        let limit = if self.mantissa < 0 {
            i64::MIN.unsigned_abs()
        } else {
            i64::MAX as u64
        };
        let v = scaled.map_or(limit, |v| u64::try_from(v).map_or(limit, |v| v.min(limit)));
        if self.mantissa < 0 {
            0i64.saturating_sub_unsigned(v)
        } else {
            v as i64
        }
    }

    /// The sum, in this quantity's format (the other's when this one is zero); `None` if it
    /// cannot be held exactly.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        let format = if self.is_zero() {
            other.format
        } else {
            self.format
        };
        let exponent = self.exponent.min(other.exponent);
        let a = self
            .mantissa
            .checked_mul(pow10(i64::from(self.exponent) - i64::from(exponent))?)?;
        let b = other
            .mantissa
            .checked_mul(pow10(i64::from(other.exponent) - i64::from(exponent))?)?;
        Quantity::from_parts(a.checked_add(b)?, i64::from(exponent), format)
    }

    /// The difference, in this quantity's format; `None` if it cannot be held exactly.
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        self.checked_add(&other.neg())
    }

    /// The negation.
    pub fn neg(&self) -> Quantity {
        Quantity {
            mantissa: -self.mantissa,
            ..*self
        }
    }

    /// `CanonicalizeBytes`: the number and the suffix, e.g. (`1500`, `m`).
    fn canonical(&self) -> (String, &'static str) {
        if self.mantissa == 0 {
            return ("0".to_string(), "");
        }
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        let mut format = self.format;
        if format == Format::BinarySI {
            let small =
                cmp_magnitude(self.mantissa, i64::from(self.exponent), 1024, 0) == Ordering::Less;
            let whole = if self.exponent >= 0 {
                pow10_u128(i64::from(self.exponent)).and_then(|p| magnitude.checked_mul(p))
            } else {
                None
            };
            match whole {
                Some(mut v) if !small => {
                    // Divide out powers of 1024: 1536Mi stays 1536Mi, 1024Mi becomes 1Gi.
                    let mut power = 0;
                    while v % 1024 == 0 {
                        v /= 1024;
                        power += 1;
                    }
                    if let Some(suffix) = BINARY_SUFFIXES.get(power) {
                        return (format!("{sign}{v}"), suffix);
                    }
                    // Past Ei there is no suffix: print the exact decimal value instead.
                    format = Format::DecimalSI;
                }
                // Small or fractional binary quantities print in decimal SI.
                _ => format = Format::DecimalSI,
            }
        }
        // Lower the exponent to a multiple of three, padding the digits: 15e-1 is 1500e-3.
        let e = i64::from(self.exponent);
        let pad = e.rem_euclid(3);
        let e3 = e - pad;
        let number = format!("{sign}{magnitude}{}", "0".repeat(pad as usize));
        // Beyond exa and below nano there is no SI suffix; those fall back to the exponent form,
        // as current Kubernetes does (`1000E` prints `1e21`).
        if format == Format::DecimalSI
            && let Some(suffix) = decimal_suffix(e3)
        {
            return (number, suffix);
        }
        if e3 == 0 {
            return (number, "");
        }
        (format!("{number}e{e3}"), "")
    }
}

const BINARY_SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];

fn decimal_suffix(exponent: i64) -> Option<&'static str> {
    Some(match exponent {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        18 => "E",
        _ => return None,
    })
}

/// `quantitySuffixer.interpret`: (base, exponent, format).
fn interpret_suffix(suffix: &str) -> Result<(u32, i32, Format), QuantityError> {
    let decimal = |e| Ok((10, e, Format::DecimalSI));
    let binary = |e| Ok((2, e, Format::BinarySI));
    match suffix {
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "" => decimal(0),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ => {
            let rest = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'))
                .filter(|r| !r.is_empty());
            // Go's ParseInt takes an optional sign; so does Rust's. Kubernetes accepts exponents
            // within ±(2^31 - 1) and rejects the rest rather than truncating them.
            let e: i32 = rest
                .and_then(|r| r.parse().ok())
                .filter(|e| *e != i32::MIN)
                .ok_or(QuantityError::Suffix)?;
            Ok((10, e, Format::DecimalExponent))
        }
    }
}

/// The pieces of a quantity string, split as `parseQuantityString` splits them.
struct Parts<'a> {
    positive: bool,
    /// Integer digits without leading zeros ("0" when there are none).
    num: &'a str,
    /// Fraction digits.
    denom: &'a str,
    suffix: &'a str,
    /// Whether the number had any digit at all (`.` and `-` have none).
    has_digits: bool,
}

fn split_quantity(s: &str) -> Result<Parts<'_>, QuantityError> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    let number_start = pos;
    let has_digits = |upto: usize| b[number_start..upto].iter().any(u8::is_ascii_digit);
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts {
            positive,
            num: "0",
            denom: "",
            suffix: "",
            has_digits: has_digits(end),
        });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == num_start {
        "0"
    } else {
        &s[num_start..pos]
    };
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let denom_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[denom_start..pos];
    }
    let has = has_digits(pos);
    if pos >= end {
        return Ok(Parts {
            positive,
            num,
            denom,
            suffix: "",
            has_digits: has,
        });
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QuantityError::FormatWrong);
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &s[suffix_start..],
        has_digits: has,
    })
}

fn digits_to_i128(digits: &[u8]) -> Option<i128> {
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mut v: i128 = 0;
    for d in digits {
        v = v * 10 + i128::from(d - b'0');
    }
    Some(v)
}

fn pow10(n: i64) -> Option<i128> {
    let n = u32::try_from(n).ok()?;
    10i128.checked_pow(n)
}

fn pow10_u128(n: i64) -> Option<u128> {
    let n = u32::try_from(n).ok()?;
    10u128.checked_pow(n)
}

/// `m / 10^n` and the remainder, for non-negative `m`; a divisor beyond `i128` gives (0, m).
fn div_pow10(m: i128, n: i64) -> (i128, i128) {
    match pow10(n) {
        Some(p) => (m / p, m % p),
        None => (0, m),
    }
}

fn div_pow10_u128(m: u128, n: i64) -> (u128, u128) {
    match pow10_u128(n) {
        Some(p) => (m / p, m % p),
        None => (0, m),
    }
}

fn digit_count(m: u128) -> i64 {
    if m == 0 { 0 } else { i64::from(m.ilog10()) + 1 }
}

/// Compare `|a| × 10^ea` with `|b| × 10^eb` without overflowing.
fn cmp_magnitude(a: i128, ea: i64, b: i128, eb: i64) -> Ordering {
    let (a, b) = (a.unsigned_abs(), b.unsigned_abs());
    match (a == 0, b == 0) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    // Compare the positions of the leading digits first.
    let (la, lb) = (digit_count(a) + ea, digit_count(b) + eb);
    if la != lb {
        return la.cmp(&lb);
    }
    // Same leading position: align the exponents (the difference is under 39 digits). A product
    // that overflows is larger than any u128.
    if ea >= eb {
        match pow10_u128(ea - eb).and_then(|p| a.checked_mul(p)) {
            Some(a) => a.cmp(&b),
            None => Ordering::Greater,
        }
    } else {
        match pow10_u128(eb - ea).and_then(|p| b.checked_mul(p)) {
            Some(b) => a.cmp(&b),
            None => Ordering::Less,
        }
    }
}

impl PartialEq for Quantity {
    /// Equal by value, whatever the format (normalization makes the parts unique).
    fn eq(&self, other: &Quantity) -> bool {
        self.mantissa == other.mantissa && self.exponent == other.exponent
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.mantissa.hash(state);
        self.exponent.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Quantity) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Quantity) -> Ordering {
        let (sa, sb) = (self.mantissa.signum(), other.mantissa.signum());
        if sa != sb {
            return sa.cmp(&sb);
        }
        let by_magnitude = cmp_magnitude(
            self.mantissa,
            i64::from(self.exponent),
            other.mantissa,
            i64::from(other.exponent),
        );
        if sa < 0 {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }
}

impl Default for Quantity {
    fn default() -> Quantity {
        Quantity::zero()
    }
}

impl fmt::Display for Quantity {
    /// The canonical form, as `Quantity.String` gives it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (number, suffix) = self.canonical();
        write!(f, "{number}{suffix}")
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;

    fn from_str(s: &str) -> Result<Quantity, QuantityError> {
        Quantity::parse(s)
    }
}

impl TryFrom<&K8sQuantity> for Quantity {
    type Error = QuantityError;

    /// Surrounding whitespace is ignored, as Kubernetes' JSON decoding ignores it.
    fn try_from(q: &K8sQuantity) -> Result<Quantity, QuantityError> {
        Quantity::parse(q.0.trim())
    }
}

impl TryFrom<K8sQuantity> for Quantity {
    type Error = QuantityError;

    fn try_from(q: K8sQuantity) -> Result<Quantity, QuantityError> {
        Quantity::try_from(&q)
    }
}

impl From<&Quantity> for K8sQuantity {
    fn from(q: &Quantity) -> K8sQuantity {
        K8sQuantity(q.to_string())
    }
}

impl From<Quantity> for K8sQuantity {
    fn from(q: Quantity) -> K8sQuantity {
        K8sQuantity(q.to_string())
    }
}

impl serde::Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Quantity {
    /// A string (surrounding whitespace ignored), or a JSON number read as its decimal text;
    /// `null` is zero, as in Kubernetes.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Quantity, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity string such as \"100m\" or \"64Mi\", or a number")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Quantity::parse(v.trim()).map_err(E::custom)
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                if !v.is_finite() {
                    return Err(E::custom(QuantityError::FormatWrong));
                }
                Quantity::parse(&v.to_string()).map_err(E::custom)
            }

            fn visit_unit<E: serde::de::Error>(self) -> Result<Quantity, E> {
                Ok(Quantity::zero())
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        parse_quantity(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    /// Input → canonical form, and the format it keeps.
    #[test]
    fn canonical_forms() {
        use Format::*;
        let cases = [
            ("0", "0", DecimalSI),
            ("1.5", "1500m", DecimalSI),
            ("0.1", "100m", DecimalSI),
            ("0.5", "500m", DecimalSI),
            ("1024Mi", "1Gi", BinarySI),
            ("1000", "1k", DecimalSI),
            ("1e3", "1e3", DecimalExponent),
            ("1E3", "1e3", DecimalExponent),
            ("1.5e3", "1500", DecimalExponent),
            ("12e6", "12e6", DecimalExponent),
            ("1e-3", "1e-3", DecimalExponent),
            ("1e+3", "1e3", DecimalExponent),
            ("100m", "100m", DecimalSI),
            ("64Mi", "64Mi", BinarySI),
            ("1536Mi", "1536Mi", BinarySI),
            ("1.5Gi", "1536Mi", BinarySI),
            ("0.5Gi", "512Mi", BinarySI),
            ("1Ki", "1Ki", BinarySI),
            ("1.5Ki", "1536", BinarySI),
            ("0.5Ki", "512", BinarySI),
            ("1.1Ki", "1126400m", BinarySI),
            ("0.0001Ki", "102400u", DecimalSI),
            ("1000Ki", "1000Ki", BinarySI),
            ("1024Ki", "1Mi", BinarySI),
            ("8Ei", "9223372036854775807", BinarySI),
            ("-8Ei", "-9223372036854775807", BinarySI),
            ("1.5k", "1500", DecimalSI),
            ("1.5M", "1500k", DecimalSI),
            ("1500m", "1500m", DecimalSI),
            ("1000m", "1", DecimalSI),
            ("2000m", "2", DecimalSI),
            ("10", "10", DecimalSI),
            ("100", "100", DecimalSI),
            ("1E", "1E", DecimalSI),
            ("1000E", "1e21", DecimalSI),
            ("5000E", "5e21", DecimalSI),
            ("12E", "12E", DecimalSI),
            ("1.01E", "1010P", DecimalSI),
            (".001Ki", "1024m", BinarySI),
            (".000001Ki", "1024u", DecimalSI),
            (".000000001Ki", "1024n", DecimalSI),
            (".000000000001Ki", "2n", DecimalSI),
            ("0.05Gi", "53687091200m", BinarySI),
            ("100.035Ki", "102435840m", BinarySI),
            ("300Mi", "300Mi", BinarySI),
            ("307200Ki", "300Mi", BinarySI),
            ("1025024Mi", "1001Gi", BinarySI),
            ("1000M", "1G", DecimalSI),
            ("0.001T", "1G", DecimalSI),
            ("1.08", "1080m", DecimalSI),
            ("1080000000n", "1080m", DecimalSI),
            ("1000u", "1m", DecimalSI),
            (".001e12", "1e9", DecimalExponent),
            ("0.001e0", "1e-3", DecimalExponent),
            ("1000e-12", "1e-9", DecimalExponent),
            ("80e-3", "80e-3", DecimalExponent),
            ("300e6", "300e6", DecimalExponent),
            ("3.001n", "4n", DecimalSI),
            ("1.1E-9", "2e-9", DecimalExponent),
            ("0.00000012345", "124n", DecimalSI),
            ("9Ei", "9223372036854775807", BinarySI),
            ("9223372036854775807Ki", "9223372036854775807", BinarySI),
            ("1n", "1n", DecimalSI),
            ("1u", "1u", DecimalSI),
            ("0.1n", "1n", DecimalSI),
            ("0.0000000001", "1n", DecimalSI),
            ("1.0000000001", "1000000001n", DecimalSI),
            ("1e-10", "1e-9", DecimalExponent),
            ("1e-2147483647", "1e-9", DecimalExponent),
            ("-1e-10", "-1e-9", DecimalExponent),
            ("-1.5", "-1500m", DecimalSI),
            ("+1.5", "1500m", DecimalSI),
            ("-0", "0", DecimalSI),
            (".5", "500m", DecimalSI),
            ("5.", "5", DecimalSI),
            ("007", "7", DecimalSI),
            ("0.000", "0", DecimalSI),
            ("1.G", "1G", DecimalSI),
            ("-", "0", DecimalSI),
            (".", "0", DecimalSI),
            ("0Ki", "0", BinarySI),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
                DecimalSI,
            ),
            ("1e2147483647", "10e2147483646", DecimalExponent),
        ];
        for (input, want, format) in cases {
            let got = q(input);
            assert_eq!(got.to_string(), want, "{input:?}");
            assert_eq!(got.format(), format, "{input:?}");
            // The canonical form parses back to the same value.
            assert_eq!(q(want), got, "round trip {input:?}");
        }
    }

    /// Values only arithmetic can reach print as current Kubernetes prints them.
    #[test]
    fn canonical_forms_beyond_suffixes() {
        let cases = [
            (1i128 << 70, 0, Format::BinarySI, "1180591620717411303424"),
            (1, 70, Format::BinarySI, "10e69"),
            (2, 70, Format::BinarySI, "20e69"),
            (1, 72, Format::BinarySI, "1e72"),
            (1025 << 60, 0, Format::BinarySI, "1025Ei"),
            (1, 21, Format::DecimalSI, "1e21"),
            (1, 24, Format::DecimalSI, "1e24"),
            (1, -12, Format::DecimalSI, "1e-12"),
            (1, -10, Format::DecimalSI, "100e-12"),
            (-2000, 0, Format::BinarySI, "-2000"),
            (-901, -2, Format::DecimalSI, "-9010m"),
        ];
        for (mantissa, exponent, format, want) in cases {
            let v = Quantity::from_parts(mantissa, exponent, format).unwrap();
            assert_eq!(v.to_string(), want, "{mantissa}e{exponent}");
        }
        assert!(Quantity::from_parts(i128::MIN, 0, Format::DecimalSI).is_none());
    }

    #[test]
    fn malformed_quantities() {
        let regex = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
        let cases = [
            ("", regex),
            ("abc", regex),
            ("1Gb", regex),
            ("1 ", regex),
            (" 1", regex),
            ("1..5", regex),
            ("1e3.5", regex),
            ("1x", regex),
            ("1KiB", regex),
            ("1.5.5", regex),
            ("1,5", regex),
            ("１", regex),
            ("1é", regex),
            ("1e", "unable to parse quantity's suffix"),
            ("1i", "unable to parse quantity's suffix"),
            ("1kk", "unable to parse quantity's suffix"),
            ("1Ki3", "unable to parse quantity's suffix"),
            ("1m3", "unable to parse quantity's suffix"),
            ("1ee3", "unable to parse quantity's suffix"),
            ("1-", "unable to parse quantity's suffix"),
            // The second '-' starts the suffix, as in Kubernetes.
            ("--1", "unable to parse quantity's suffix"),
            ("1e+", "unable to parse quantity's suffix"),
            ("1e99999999999", "unable to parse quantity's suffix"),
            ("1.1.M", regex),
            ("1+1.0M", regex),
            ("0.1am", regex),
            ("aoeu", regex),
            ("0.1mi", "unable to parse quantity's suffix"),
            (".5i", "unable to parse quantity's suffix"),
            ("-3.01i", "unable to parse quantity's suffix"),
            ("-3.01e-", "unable to parse quantity's suffix"),
            (".e-10", "unable to parse numeric part of quantity"),
            ("-e-10", "unable to parse numeric part of quantity"),
        ];
        for (input, want) in cases {
            match parse_quantity(input) {
                Ok(v) => panic!("{input:?} parsed as {v}"),
                Err(e) => assert_eq!(e.to_string(), want, "{input:?}"),
            }
        }
        let too_long = format!("1{}1", "0".repeat(40));
        let err = parse_quantity(&too_long).unwrap_err();
        assert!(matches!(err, QuantityError::OutOfRange(_)), "{err}");
        assert!(err.to_string().contains("too many significant digits"));
        let too_long_binary = format!("0.{}1Ki", "1".repeat(40));
        assert!(matches!(
            parse_quantity(&too_long_binary),
            Err(QuantityError::OutOfRange(_))
        ));
        // Huge exponents that still fit: no panic, and an error where the exponent overflows.
        assert!(matches!(
            parse_quantity("10e2147483647"),
            Err(QuantityError::OutOfRange(_))
        ));
        assert_eq!(parse_quantity("1e-2147483648"), Err(QuantityError::Suffix));
        assert_eq!(parse_quantity("1e4294967297"), Err(QuantityError::Suffix));
    }

    #[test]
    fn many_digits_are_rounded_or_rejected_not_panicking() {
        // Fraction digits below nano are rounded away before the i128 limit applies.
        assert_eq!(
            q(&format!("0.{}", "1".repeat(60))).to_string(),
            "111111112n"
        );
        assert_eq!(q(&format!("{}e-60", "9".repeat(30))).to_string(), "1e-9");
        assert_eq!(
            q(&format!("1{}Ki", "0".repeat(50))).to_string(),
            "9223372036854775807"
        );
        assert_eq!(q(&format!("0.{}1Ki", "0".repeat(50))).to_string(), "1n");
        for input in [
            "9".repeat(38),
            format!("-{}", "9".repeat(38)),
            format!("{}Ei", "9".repeat(38)),
        ] {
            let _ = parse_quantity(&input).map(|v| v.to_string());
        }
    }

    #[test]
    fn ordering_by_value() {
        let cases = [
            ("1Gi", "1G", Ordering::Greater),
            ("1000m", "1", Ordering::Equal),
            ("0.5", "500m", Ordering::Equal),
            ("1k", "1e3", Ordering::Equal),
            ("1Ki", "1024", Ordering::Equal),
            ("1Ki", "1k", Ordering::Greater),
            ("999m", "1", Ordering::Less),
            ("-1", "1", Ordering::Less),
            ("-2", "-1", Ordering::Less),
            ("0", "-0.001", Ordering::Greater),
            ("0", "0Ki", Ordering::Equal),
            ("1n", "0", Ordering::Greater),
            ("1E", "1Ei", Ordering::Less),
            ("100Mi", "0.1Gi", Ordering::Less),
            ("1e20", "99999999999999999999", Ordering::Greater),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567891",
                Ordering::Less,
            ),
            ("1e2147483646", "9e38", Ordering::Greater),
            ("1e-9", "2n", Ordering::Less),
        ];
        for (a, b, want) in cases {
            assert_eq!(q(a).cmp(&q(b)), want, "{a} vs {b}");
            assert_eq!(q(b).cmp(&q(a)), want.reverse(), "{b} vs {a}");
            assert_eq!(q(a) == q(b), want == Ordering::Equal, "{a} == {b}");
        }
        let mut sorted = [q("1Gi"), q("1"), q("-1"), q("500m"), q("1G")];
        sorted.sort();
        let printed: Vec<String> = sorted.iter().map(|v| v.to_string()).collect();
        assert_eq!(printed, ["-1", "500m", "1", "1G", "1Gi"]);
    }

    #[test]
    fn scaled_values_round_up() {
        let cases = [
            ("1", 1000, 1),
            ("100m", 100, 1),
            ("1500m", 1500, 2),
            ("0.1m", 1, 1),
            ("1n", 1, 1),
            ("-0.1m", -1, -1),
            ("-1500m", -1500, -2),
            ("64Mi", 67_108_864_000, 67_108_864),
            ("0", 0, 0),
            ("1e30", i64::MAX, i64::MAX),
            ("-1e30", i64::MIN, i64::MIN),
            ("8Ei", i64::MAX, i64::MAX),
            ("9223372036854775807", i64::MAX, i64::MAX),
            ("9223372036854775.807", i64::MAX, 9_223_372_036_854_776),
        ];
        for (input, milli, value) in cases {
            assert_eq!(q(input).to_milli_ceil(), milli, "milli {input}");
            assert_eq!(q(input).to_value_ceil(), value, "value {input}");
        }
    }

    #[test]
    fn zero_and_sign() {
        for input in ["0", "0m", "0Ki", "-0", "0.0", "+0e5"] {
            assert!(q(input).is_zero(), "{input}");
            assert_eq!(q(input).signum(), 0);
        }
        assert_eq!(q("-1m").signum(), -1);
        assert_eq!(q("1m").signum(), 1);
        assert!(!q("1n").is_zero());
        assert_eq!(Quantity::default(), Quantity::zero());
    }

    #[test]
    fn arithmetic() {
        let cases = [
            ("1", "500m", "1500m"),
            ("1Gi", "1Gi", "2Gi"),
            ("100m", "-100m", "0"),
            ("0", "1Ki", "1Ki"),
            ("1k", "1", "1001"),
            ("1e3", "1e3", "2e3"),
        ];
        for (a, b, want) in cases {
            assert_eq!(
                q(a).checked_add(&q(b)).unwrap().to_string(),
                want,
                "{a} + {b}"
            );
        }
        assert_eq!(q("1").checked_sub(&q("250m")).unwrap().to_string(), "750m");
        assert_eq!(q("1e2147483646").checked_add(&q("1n")), None);
        assert_eq!(
            Quantity::from_milli(1500, Format::DecimalSI).to_string(),
            "1500m"
        );
        assert_eq!(Quantity::new(1 << 30, Format::BinarySI).to_string(), "1Gi");
        assert_eq!(Quantity::new(-5, Format::DecimalSI).to_string(), "-5");
        assert!((q("1.5").to_f64() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn serde_as_string_or_number() {
        let cases = [
            ("\"100m\"", "100m"),
            ("\" 64Mi \"", "64Mi"),
            ("1", "1"),
            ("1.5", "1500m"),
            ("0.1", "100m"),
            ("-2", "-2"),
            ("18446744073709551615", "18446744073709551615"),
            ("null", "0"),
        ];
        for (json, want) in cases {
            let v: Quantity = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
            assert_eq!(v.to_string(), want, "{json}");
        }
        for json in ["\"abc\"", "true", "[]", "{}", "\"\""] {
            assert!(serde_json::from_str::<Quantity>(json).is_err(), "{json}");
        }
        let err = serde_json::from_str::<Quantity>("\"1Gb\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("quantities must match the regular expression"),
            "{err}"
        );
        assert_eq!(serde_json::to_string(&q("1.5")).unwrap(), "\"1500m\"");
        assert_eq!(serde_json::to_string(&q("1024Mi")).unwrap(), "\"1Gi\"");
        let opt: Option<Quantity> = serde_json::from_str("null").unwrap();
        assert_eq!(opt, None);
    }

    #[test]
    fn k8s_openapi_conversions() {
        let k = K8sQuantity("1.5Gi".to_string());
        let v = Quantity::try_from(&k).unwrap();
        assert_eq!(v.to_string(), "1536Mi");
        assert_eq!(K8sQuantity::from(&v).0, "1536Mi");
        assert_eq!(
            Quantity::try_from(K8sQuantity(" 2 ".to_string())).unwrap(),
            q("2")
        );
        assert_eq!(
            Quantity::try_from(K8sQuantity("x".to_string())),
            Err(QuantityError::FormatWrong)
        );
        assert_eq!(K8sQuantity::from(q("1000")).0, "1k");
    }
}
