//! The VCH's public-key infrastructure: generate, load, validate and export certificates, and
//! build the rustls configurations that the endpoint and `vic-machine` use.
//!
//! Invariants: this crate touches no network; key material reaches disk only through
//! [`write_private`] (mode 0600, written atomically); every rejection of a user's file is a
//! [`PkiError`] that names the file, what is wrong and how to fix it.

mod error;
mod files;
mod generate;
mod inspect;
mod issuer;
mod key;
mod load;
mod name;
mod password;
mod tls;
mod trust;
mod validate;

pub use error::PkiError;
pub use files::{create_private_dir, write_atomic, write_private, write_public};
pub use generate::{
    CA_DAYS, CaSigner, ClientProfile, GeneratedPair, LEAF_DAYS, generate_ca, generate_client,
    generate_server, pfx_bundle, random_hex, renew_ca,
};
pub use inspect::{
    CertSummary, EXPIRY_WARNING_DAYS, ExpiryNotice, days_left, expiring, expiry_notice,
    format_time, summarize,
};
pub use issuer::{issuing_chain, signed_by};
pub use key::{KEY_TYPE_ECDSA, KEY_TYPE_RSA, KeySize, NewKey};
pub use load::{Bundle, load_bundle, parse_bundle};
pub use name::{HostName, covers};
pub use password::{generate_password, hash_password, verify_password};
pub use tls::{
    ClientAuth, PinnedServer, client_config, dangerous_unverified_client_config,
    install_crypto_provider, ping_client_config, server_config, system_roots,
};
pub use trust::{
    CertId, ClientIdentity, ClientTrust, READ_ONLY_OU, Revocations, Role, fingerprint,
    normalize_hex, normalize_serial, serial_hex,
};
pub use validate::{
    ServerCheck, check_ca_bundle, check_client_cert, check_server_identity, key_matches_cert,
};

/// Re-exported so that callers name certificate and key types without depending on rustls.
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
