//! Backup passphrases: the secret newtype, a generated passphrase, and the strength check a
//! typed-in one must pass (`docs/backup.md` § Passphrase).
//!
//! A **generated** passphrase is 120 random bits from the OS generator written as 24 base32
//! characters (RFC 4648 alphabet, `A–Z 2–7`) in six groups of four: `ABCD-EFGH-…`. It passes
//! the strength check by construction.
//!
//! A **typed** passphrase is first put in Unicode NFC, so the same words typed with another
//! input method derive the same key. Its strength is estimated without a dictionary (the
//! dictionary-based `zxcvbn` crate was measured and left out for the .deb size budget, see
//! `docs/backup.md`): each character adds `log2` of the size of the character classes the
//! passphrase uses (lower, upper, digits, symbols, other scripts), except that a character
//! equal to, or one code point away from, the previous one adds one bit only (`aaaa`, `1234`,
//! `abcd`). A passphrase must reach [`MIN_ESTIMATED_BITS`]. The estimate is an upper bound for
//! dictionary words, so the floor is set high: a typical accepted passphrase is five or more
//! unrelated words, or 14+ mixed characters.

use std::fmt;

use subtle::ConstantTimeEq;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use super::BackupError;

/// The estimate a typed passphrase must reach.
pub const MIN_ESTIMATED_BITS: u32 = 80;
/// Random bytes in a generated passphrase (120 bits, 24 base32 characters).
pub const GENERATED_BYTES: usize = 15;
/// Longest passphrase accepted, in bytes after NFC (a paste of a whole file is a mistake).
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// A backup passphrase: NFC-normalised UTF-8, zeroized on drop, compared in constant time, never
/// printed.
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps `text` after Unicode NFC normalisation. No strength check (see [`Self::checked`]);
    /// restoring accepts whatever the backup was made with.
    pub fn new(text: &str) -> Self {
        Self(Zeroizing::new(text.nfc().collect()))
    }

    /// [`Self::new`] for text that arrived over IPC: the `String` is zeroized once normalised.
    pub fn from_owned(text: String) -> Self {
        let text = Zeroizing::new(text);
        Self::new(&text)
    }

    /// [`Self::checked`] for text that arrived over IPC (zeroized once normalised).
    pub fn checked_owned(text: String) -> Result<Self, BackupError> {
        let text = Zeroizing::new(text);
        Self::checked(&text)
    }

    /// A typed-in passphrase for a new backup: refused with
    /// [`BackupError::PassphraseTooWeak`] unless its estimate reaches [`MIN_ESTIMATED_BITS`].
    pub fn checked(text: &str) -> Result<Self, BackupError> {
        let passphrase = Self::new(text);
        let strength = passphrase.strength();
        if strength.acceptable {
            Ok(passphrase)
        } else {
            Err(BackupError::PassphraseTooWeak {
                estimated_bits: strength.estimated_bits,
                required_bits: MIN_ESTIMATED_BITS,
            })
        }
    }

    /// A new random passphrase: [`GENERATED_BYTES`] from the OS generator in base32 groups of 4.
    pub fn generate() -> Result<Self, BackupError> {
        let mut bytes = Zeroizing::new([0u8; GENERATED_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|_| BackupError::Randomness)?;
        let encoded = Zeroizing::new(data_encoding::BASE32_NOPAD.encode(bytes.as_ref()));
        let mut grouped = Zeroizing::new(String::with_capacity(encoded.len() + 6));
        for (index, character) in encoded.chars().enumerate() {
            if index > 0 && index % 4 == 0 {
                grouped.push('-');
            }
            grouped.push(character);
        }
        Ok(Self(grouped))
    }

    /// The passphrase's bytes (what Argon2id is given).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// The passphrase as text, to show a generated one to the user once.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The strength estimate (module docs).
    pub fn strength(&self) -> PassphraseStrength {
        let bits = estimate_bits(&self.0);
        let too_long = self.0.len() > MAX_PASSPHRASE_BYTES;
        PassphraseStrength {
            estimated_bits: bits,
            acceptable: bits >= MIN_ESTIMATED_BITS && !too_long,
        }
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl ConstantTimeEq for Passphrase {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.as_bytes().ct_eq(other.0.as_bytes())
    }
}

/// What the strength check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassphraseStrength {
    /// The estimate in bits (module docs).
    pub estimated_bits: u32,
    /// Whether a new backup may use it.
    pub acceptable: bool,
}

fn estimate_bits(text: &str) -> u32 {
    let (mut lower, mut upper, mut digit, mut symbol, mut other) =
        (false, false, false, false, false);
    for c in text.chars() {
        match c {
            'a'..='z' => lower = true,
            'A'..='Z' => upper = true,
            '0'..='9' => digit = true,
            c if c.is_ascii_graphic() || c == ' ' => symbol = true,
            _ => other = true,
        }
    }
    let pool = u32::from(lower) * 26
        + u32::from(upper) * 26
        + u32::from(digit) * 10
        + u32::from(symbol) * 33
        + u32::from(other) * 100;
    if pool < 2 {
        return 0;
    }
    let per_char = f64::from(pool).log2();
    let mut total = 0.0f64;
    let mut previous: Option<u32> = None;
    for c in text.chars() {
        let code = u32::from(c);
        let predictable = previous.is_some_and(|p| p.abs_diff(code) <= 1);
        total += if predictable { 1.0 } else { per_char };
        previous = Some(code);
    }
    // Bounded by the text length (≤ a few thousand characters): fits in u32.
    total.floor().min(f64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passphrases_are_grouped_base32_and_strong() {
        let a = Passphrase::generate().unwrap();
        let b = Passphrase::generate().unwrap();
        assert!(!bool::from(a.ct_eq(&b)));
        let text = a.expose_secret();
        assert_eq!(text.len(), 24 + 5);
        assert!(text.split('-').all(|group| group.len() == 4));
        assert!(
            text.chars()
                .all(|c| c == '-' || c.is_ascii_uppercase() || ('2'..='7').contains(&c))
        );
        assert!(a.strength().acceptable);
        assert!(Passphrase::checked(text).is_ok());
    }

    #[test]
    fn weak_passphrases_are_refused() {
        for weak in [
            "",
            "password",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "12345678901234567890",
            "abcdefghijklmnopqrstuvwxyz",
            "Tr0ub4dor&3",
        ] {
            assert!(
                matches!(
                    Passphrase::checked(weak),
                    Err(BackupError::PassphraseTooWeak { .. })
                ),
                "{weak:?} was accepted"
            );
        }
        assert!(Passphrase::checked("maple orbit velvet crane tundra pilot").is_ok());
        assert!(Passphrase::checked(&"x9".repeat(600)).is_err(), "too long");
    }

    #[test]
    fn typed_passphrases_are_normalised_to_nfc() {
        let composed = Passphrase::new("caf\u{e9}");
        let decomposed = Passphrase::new("cafe\u{301}");
        assert!(bool::from(composed.ct_eq(&decomposed)));
        assert_eq!(format!("{composed:?}"), "Passphrase(<redacted>)");
    }
}
