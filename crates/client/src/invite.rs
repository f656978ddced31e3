//! Invites: the signed, single-use offer to talk (`docs/engine.md` § Invites).
//!
//! The byte layout, the signature context and the text form are written out in
//! `docs/engine.md` § Invites. Decoding never panics: every length is checked.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealpost_crypto::{
    IdentityKey, IdentityKeyPair, IdentitySignature, OneTimePrekey, SignatureContext, SignedPrekey,
};
use sha2::{Digest, Sha256};

/// The invite format version.
pub const INVITE_VERSION: u8 = 1;
/// The text form's scheme prefix.
pub const INVITE_PREFIX: &str = "sealpost:";
/// Longest display name in an invite, bytes.
pub const MAX_INVITE_NAME: usize = 64;
/// Longest relay URL in an invite, bytes.
pub const MAX_INVITE_URL: usize = 256;
/// Most relays in one invite.
pub const MAX_INVITE_RELAYS: usize = 4;
const SIGNATURE_LEN: usize = 64;
const CHECKSUM_LEN: usize = 4;

/// One relay's mailbox in an invite: where the accepter writes the first message.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteRelay {
    /// The relay URL.
    pub url: String,
    /// The mailbox's send id.
    pub send_id: [u8; 32],
    /// The mailbox's send secret (meant to be shared with the invitee only).
    pub send_secret: [u8; 32],
    /// The X25519 key the mailbox is sealed to (`docs/crypto.md` § Sealed envelope).
    pub sealing_public_key: [u8; 32],
}

/// A decoded, signature-checked invite.
#[derive(Clone)]
pub struct Invite {
    /// The invite's id (random).
    pub invite_id: [u8; 16],
    /// The inviter's identity key.
    pub identity: IdentityKey,
    /// The inviter's signed prekey.
    pub signed_prekey: SignedPrekey,
    /// The invite's own one-time prekey (single use, `docs/engine.md` § Invites).
    pub one_time_prekey: OneTimePrekey,
    /// Unix seconds after which the invite is refused.
    pub expires_at_secs: u64,
    /// The inviter's display name (may be empty).
    pub display_name: String,
    /// One mailbox per relay (1..=4).
    pub relays: Vec<InviteRelay>,
}

/// Why an invite text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The text does not start with `sealpost:` or is not base64url.
    #[error("this is not a Sealpost invite")]
    NotAnInvite,
    /// The checksum does not match: the text was truncated or mistyped.
    #[error("the invite text is incomplete or mistyped")]
    Checksum,
    /// The bytes do not parse.
    #[error("the invite is malformed: {0}")]
    Malformed(&'static str),
    /// The version is not one this build reads.
    #[error("unsupported invite version {0}")]
    Version(u8),
    /// The identity signature (or the signed prekey's) does not verify.
    #[error("the invite's signature does not verify")]
    BadSignature,
    /// Building an invite failed (a field is too long, signing failed).
    #[error("cannot build the invite: {0}")]
    Build(&'static str),
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8], InviteError> {
        if self.bytes.len() < count {
            return Err(InviteError::Malformed("truncated"));
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, InviteError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, InviteError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn string(&mut self, max: usize) -> Result<String, InviteError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(InviteError::Malformed("string too long"));
        }
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| InviteError::Malformed("utf-8"))
    }
}

fn put_string(out: &mut Vec<u8>, text: &str, max: usize) -> Result<(), InviteError> {
    if text.len() > max {
        return Err(InviteError::Build("a text field is too long"));
    }
    let len = u16::try_from(text.len()).map_err(|_| InviteError::Build("length"))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

impl Invite {
    /// The signed bytes (`docs/engine.md` layout, without signature and checksum).
    pub fn body_bytes(&self) -> Result<Vec<u8>, InviteError> {
        if self.relays.is_empty() || self.relays.len() > MAX_INVITE_RELAYS {
            return Err(InviteError::Build("an invite names 1 to 4 relays"));
        }
        let mut out = Vec::with_capacity(512);
        out.push(INVITE_VERSION);
        out.extend_from_slice(&self.invite_id);
        out.extend_from_slice(&self.identity.to_bytes());
        out.extend_from_slice(&self.signed_prekey.to_bytes());
        out.extend_from_slice(&self.one_time_prekey.to_bytes());
        out.extend_from_slice(&self.expires_at_secs.to_be_bytes());
        put_string(&mut out, &self.display_name, MAX_INVITE_NAME)?;
        out.push(u8::try_from(self.relays.len()).map_err(|_| InviteError::Build("relays"))?);
        for relay in &self.relays {
            put_string(&mut out, &relay.url, MAX_INVITE_URL)?;
            out.extend_from_slice(&relay.send_id);
            out.extend_from_slice(&relay.send_secret);
            out.extend_from_slice(&relay.sealing_public_key);
        }
        Ok(out)
    }

    /// Signs the invite with the inviter's identity and returns its `sealpost:` text.
    pub fn sign_to_text(&self, identity: &IdentityKeyPair) -> Result<String, InviteError> {
        let body = self.body_bytes()?;
        let signature = identity
            .sign(SignatureContext::Invite, &body)
            .map_err(|_| InviteError::Build("signing failed"))?;
        let mut signed = body;
        signed.extend_from_slice(&signature.to_bytes());
        let checksum = Sha256::digest(&signed);
        signed.extend_from_slice(checksum.get(..CHECKSUM_LEN).unwrap_or_default());
        Ok(format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(signed)))
    }

    /// Parses and verifies an invite text: prefix, checksum, layout, identity signature, and the
    /// signed prekey's signature. Expiry and "own invite" are the caller's checks.
    pub fn parse(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        let encoded = text
            .strip_prefix(INVITE_PREFIX)
            .or_else(|| text.strip_prefix("SEALPOST:"))
            .ok_or(InviteError::NotAnInvite)?;
        let encoded = encoded.strip_prefix("//").unwrap_or(encoded);
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| InviteError::NotAnInvite)?;
        let Some(signed_len) = bytes.len().checked_sub(CHECKSUM_LEN) else {
            return Err(InviteError::Checksum);
        };
        let (signed, checksum) = bytes.split_at(signed_len);
        if Sha256::digest(signed).get(..CHECKSUM_LEN) != Some(checksum) {
            return Err(InviteError::Checksum);
        }
        let Some(body_len) = signed.len().checked_sub(SIGNATURE_LEN) else {
            return Err(InviteError::Malformed("truncated"));
        };
        let (body, signature) = signed.split_at(body_len);
        let invite = Self::parse_body(body)?;
        let mut signature_bytes = [0u8; SIGNATURE_LEN];
        signature_bytes.copy_from_slice(signature);
        invite
            .identity
            .verify(
                SignatureContext::Invite,
                body,
                &IdentitySignature::from_bytes(signature_bytes),
            )
            .map_err(|_| InviteError::BadSignature)?;
        invite
            .signed_prekey
            .verify(&invite.identity)
            .map_err(|_| InviteError::BadSignature)?;
        Ok(invite)
    }

    fn parse_body(body: &[u8]) -> Result<Self, InviteError> {
        let mut reader = Reader { bytes: body };
        let version = reader.u8()?;
        if version != INVITE_VERSION {
            return Err(InviteError::Version(version));
        }
        let invite_id = reader.array::<16>()?;
        let identity = IdentityKey::from_bytes(&reader.array::<64>()?)
            .map_err(|_| InviteError::Malformed("identity key"))?;
        let signed_prekey = SignedPrekey::from_bytes(reader.take(SignedPrekey::LEN)?)
            .map_err(|_| InviteError::Malformed("signed prekey"))?;
        let one_time_prekey = OneTimePrekey::from_bytes(reader.take(OneTimePrekey::LEN)?)
            .map_err(|_| InviteError::Malformed("one-time prekey"))?;
        let expires_at_secs = u64::from_be_bytes(reader.array()?);
        let display_name = reader.string(MAX_INVITE_NAME)?;
        let count = usize::from(reader.u8()?);
        if count == 0 || count > MAX_INVITE_RELAYS {
            return Err(InviteError::Malformed("relay count"));
        }
        let mut relays = Vec::with_capacity(count);
        for _ in 0..count {
            relays.push(InviteRelay {
                url: reader.string(MAX_INVITE_URL)?,
                send_id: reader.array()?,
                send_secret: reader.array()?,
                sealing_public_key: reader.array()?,
            });
        }
        if !reader.bytes.is_empty() {
            return Err(InviteError::Malformed("trailing bytes"));
        }
        Ok(Self {
            invite_id,
            identity,
            signed_prekey,
            one_time_prekey,
            expires_at_secs,
            display_name,
            relays,
        })
    }
}

/// Renders `data` as a QR code in a complete SVG document.
pub fn qr_svg(data: &[u8]) -> Result<String, InviteError> {
    let code = qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M)
        .map_err(|_| InviteError::Build("too long for a QR code"))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sealpost_crypto::{IdentitySeed, OneTimePrekeyPair, SignedPrekeyPair};

    fn sample() -> (IdentityKeyPair, Invite) {
        let identity = IdentityKeyPair::from_seed(&IdentitySeed::generate().unwrap()).unwrap();
        let signed = SignedPrekeyPair::generate(&identity).unwrap();
        let one_time = OneTimePrekeyPair::generate().unwrap();
        let invite = Invite {
            invite_id: [1; 16],
            identity: *identity.public(),
            signed_prekey: *signed.public(),
            one_time_prekey: *one_time.public(),
            expires_at_secs: 1_900_000_000,
            display_name: "Alice".into(),
            relays: vec![InviteRelay {
                url: "ws://127.0.0.1:7443".into(),
                send_id: [2; 32],
                send_secret: [3; 32],
                sealing_public_key: [4; 32],
            }],
        };
        (identity, invite)
    }

    #[test]
    fn round_trips_and_verifies() {
        let (identity, invite) = sample();
        let text = invite.sign_to_text(&identity).unwrap();
        assert!(text.starts_with(INVITE_PREFIX));
        let parsed = Invite::parse(&text).unwrap();
        assert_eq!(parsed.body_bytes().unwrap(), invite.body_bytes().unwrap());
        assert!(qr_svg(text.as_bytes()).unwrap().contains("<svg"));
    }

    #[test]
    fn truncation_is_a_checksum_error() {
        let (identity, invite) = sample();
        let text = invite.sign_to_text(&identity).unwrap();
        let cut = &text[..text.len() - 3];
        assert!(matches!(
            Invite::parse(cut),
            Err(InviteError::Checksum | InviteError::NotAnInvite)
        ));
    }

    #[test]
    fn a_tampered_body_with_fixed_checksum_fails_the_signature() {
        let (identity, invite) = sample();
        let text = invite.sign_to_text(&identity).unwrap();
        let mut bytes = URL_SAFE_NO_PAD
            .decode(text.strip_prefix(INVITE_PREFIX).unwrap())
            .unwrap();
        let name_at = 1 + 16 + 64 + SignedPrekey::LEN + OneTimePrekey::LEN + 8 + 2;
        bytes[name_at] ^= 0x01;
        let signed_len = bytes.len() - CHECKSUM_LEN;
        let checksum = Sha256::digest(&bytes[..signed_len]);
        bytes[signed_len..].copy_from_slice(&checksum[..CHECKSUM_LEN]);
        let tampered = format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(
            Invite::parse(&tampered).err(),
            Some(InviteError::BadSignature)
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let text = format!("{INVITE_PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
            let _ = Invite::parse(&text);
            let _ = Invite::parse_body(&bytes);
        }
    }
}
