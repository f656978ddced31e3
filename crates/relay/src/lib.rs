//! The Sealpost relay: a blind store-and-forward service for sealed envelopes.
