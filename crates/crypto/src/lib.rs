//! Sealpost's sealing core: identities, X3DH, the Double Ratchet and HPKE sealed envelopes. No IO, no async.
#![forbid(unsafe_code)]
