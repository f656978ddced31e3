//! Relay addresses: [`RelayUrl`] parses `wss://` and `ws://` URLs (defined once in
//! `sealpost-ids`, shared with the client store), and [`TransportPolicy`] says whether plain
//! `ws://` may leave the machine.
//!
//! Syntax and policy are separate steps on purpose: an invite may name a `ws://` relay that
//! parses fine, and the user's settings decide whether the engine may talk to it.
//! [`crate::Connector::connect`] always applies its policy before opening a socket.

pub use sealpost_ids::{RelayUrl, UrlError};

/// Which transports the client may use (`docs/relay-protocol.md` § 2 Transport,
/// `docs/threat-model.md` § A network attacker).
///
/// The default refuses plain `ws://` to anything but loopback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportPolicy {
    /// Allow plain, unencrypted `ws://` to hosts that are not loopback. Off by default; only an
    /// explicit user setting should turn it on (a LAN relay without TLS, for example).
    pub allow_insecure_remote: bool,
}

impl TransportPolicy {
    /// Refuses `ws://` to a non-loopback host unless [`Self::allow_insecure_remote`] is set.
    /// `.onion` relays are refused here (no proxy known); see [`Self::check_routed`].
    pub fn check(&self, url: &RelayUrl) -> Result<(), UrlError> {
        self.check_routed(url, false)
    }

    /// [`Self::check`] knowing whether connections go through a SOCKS5 proxy: a `.onion` relay
    /// is allowed only through one, and then also over plain `ws://` (an onion service
    /// connection is encrypted end to end and authenticated by its address).
    pub fn check_routed(&self, url: &RelayUrl, proxied: bool) -> Result<(), UrlError> {
        if url.is_onion() {
            return if proxied {
                Ok(())
            } else {
                Err(UrlError::OnionWithoutProxy { host: url.host() })
            };
        }
        if url.is_tls() || url.is_loopback() || self.allow_insecure_remote {
            Ok(())
        } else {
            Err(UrlError::InsecureRemote { host: url.host() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    /// Plain `ws://` under the default policy: only a literal loopback address or exactly
    /// `localhost` is accepted.
    #[test_case("ws://127.0.0.1:7443" ; "v4 loopback")]
    #[test_case("ws://127.3.2.1:1" ; "anywhere in 127 slash 8")]
    #[test_case("ws://[::1]:9000/" ; "v6 loopback")]
    #[test_case("ws://[::ffff:127.0.0.1]:9000/" ; "v4 mapped loopback")]
    #[test_case("ws://localhost" ; "localhost")]
    #[test_case("ws://LOCALHOST:80" ; "localhost in capitals is lowercased by the parser")]
    #[test_case("ws://2130706433:80" ; "decimal 127.0.0.1 is parsed to the address")]
    fn plain_ws_is_accepted_to_loopback(text: &str) {
        let url = RelayUrl::parse(text).unwrap();
        assert!(url.is_loopback());
        assert_eq!(TransportPolicy::default().check(&url), Ok(()));
    }

    #[test_case("ws://localhost.:80" ; "trailing dot goes to the resolver")]
    #[test_case("ws://LOCALHOST.:80" ; "trailing dot in capitals")]
    #[test_case("ws://localhost..:80" ; "two trailing dots")]
    #[test_case("ws://foo.localhost:80" ; "subdomain of localhost")]
    #[test_case("ws://localhost.evil.example" ; "name starting with localhost")]
    #[test_case("ws://localhost6:80" ; "localhost6 alias")]
    #[test_case("ws://loopback:80" ; "other alias")]
    #[test_case("ws://10.0.0.1:80" ; "lan address")]
    #[test_case("ws://0.0.0.0:80" ; "unspecified v4")]
    #[test_case("ws://[::]:80" ; "unspecified v6")]
    #[test_case("ws://[::ffff:10.0.0.1]:80" ; "v4 mapped lan")]
    #[test_case("ws://relay.example:80" ; "remote name")]
    fn plain_ws_is_refused_beyond_loopback(text: &str) {
        let url = RelayUrl::parse(text).unwrap();
        assert!(!url.is_loopback());
        assert!(matches!(
            TransportPolicy::default().check(&url),
            Err(UrlError::InsecureRemote { .. })
        ));
    }

    #[test_case("ws://relay2wyxzabc.onion", false, false ; "ws onion without proxy")]
    #[test_case("wss://relay2wyxzabc.onion", false, false ; "wss onion without proxy")]
    #[test_case("ws://relay2wyxzabc.onion", true, true ; "ws onion through the proxy")]
    #[test_case("wss://relay2wyxzabc.onion:8443", true, true ; "wss onion through the proxy")]
    #[test_case("ws://relay.example", true, false ; "plain remote stays refused through the proxy")]
    #[test_case("wss://relay.example", true, true ; "wss remote through the proxy")]
    fn onion_relays_only_through_a_proxy(text: &str, proxied: bool, allowed: bool) {
        let url = RelayUrl::parse(text).unwrap();
        assert_eq!(
            TransportPolicy::default()
                .check_routed(&url, proxied)
                .is_ok(),
            allowed
        );
    }

    #[test]
    fn policy_refuses_plain_remote_unless_allowed() {
        let strict = TransportPolicy::default();
        let lax = TransportPolicy {
            allow_insecure_remote: true,
        };
        let remote = RelayUrl::parse("ws://relay.example:80").unwrap();
        assert_eq!(
            strict.check(&remote),
            Err(UrlError::InsecureRemote {
                host: "relay.example".into()
            })
        );
        assert_eq!(lax.check(&remote), Ok(()));
        assert_eq!(
            strict.check(&RelayUrl::parse("ws://127.0.0.1:1").unwrap()),
            Ok(())
        );
        assert_eq!(
            strict.check(&RelayUrl::parse("wss://relay.example").unwrap()),
            Ok(())
        );
        // A name that merely starts with "localhost" is not loopback.
        let tricky = RelayUrl::parse("ws://localhost.evil.example").unwrap();
        assert!(strict.check(&tricky).is_err());
    }
}
