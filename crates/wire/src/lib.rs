//! The Sealpost relay protocol: every frame a client and a relay exchange, and their binary codec.
