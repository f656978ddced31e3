/**
 * A generated backup passphrase, made here in the window so no secret ever comes back over IPC:
 * 120 random bits from the Web Crypto generator as 24 base32 characters (RFC 4648 alphabet
 * A–Z 2–7) in six groups of four, the same shape as the engine's own generator
 * (crates/client/src/backup/passphrase.rs; `docs/backup.md` § Passphrase).
 */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Encodes `bytes` (a multiple of 5 bytes) in base32 without padding. */
export function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    buffer &= (1 << bits) - 1;
  }
  return out;
}

/** A new passphrase, e.g. `K7QF-MZ2A-…` (six groups of four). */
export function generatePassphrase(
  random: (bytes: Uint8Array<ArrayBuffer>) => void = (b) => crypto.getRandomValues(b),
): string {
  const bytes = new Uint8Array(15);
  random(bytes);
  const text = base32(bytes);
  bytes.fill(0);
  return text.match(/.{4}/g)?.join("-") ?? text;
}
