//! What a client needs to verify a server certificate: the chain that issued it.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;

fn parsed<'a>(der: &'a CertificateDer<'_>) -> Option<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der.as_ref())
        .ok()
        .map(|(_, c)| c)
}

/// Whether `issuer` signed `cert` (names match and the signature verifies).
pub fn signed_by(cert: &CertificateDer<'_>, issuer: &CertificateDer<'_>) -> bool {
    let (Some(c), Some(i)) = (parsed(cert), parsed(issuer)) else {
        return false;
    };
    c.issuer().as_raw() == i.subject().as_raw() && c.verify_signature(Some(i.public_key())).is_ok()
}

/// The certificates a client should trust to verify the server serving `chain` (leaf first):
/// the rest of the chain when the next one signed the leaf, else one of `cas` that signed it,
/// else the leaf itself when it is self-signed. `None` when none of these issued it: what
/// signed it is not known here.
pub fn issuing_chain(
    chain: &[CertificateDer<'static>],
    cas: &[CertificateDer<'static>],
) -> Option<Vec<CertificateDer<'static>>> {
    let leaf = chain.first()?;
    if let Some(next) = chain.get(1)
        && signed_by(leaf, next)
    {
        return Some(chain[1..].to_vec());
    }
    if let Some(ca) = cas.iter().find(|ca| signed_by(leaf, ca)) {
        return Some(vec![ca.clone()]);
    }
    signed_by(leaf, leaf).then(|| vec![leaf.clone()])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HostName, KeySize, generate_ca, generate_server};

    #[test]
    fn the_issuer_comes_from_the_chain_the_cas_or_the_leaf_itself() {
        let names = [HostName::parse("vch.test")];
        let ca = generate_ca("t", &[], 30, KeySize::Rsa2048).unwrap();
        let other = generate_ca("o", &[], 30, KeySize::Rsa2048).unwrap();
        let leaf = generate_server(
            Some(&ca.signer().unwrap()),
            "vch.test",
            &names,
            &[],
            30,
            KeySize::Rsa2048,
        )
        .unwrap()
        .cert_der;
        let own = generate_server(None, "vch.test", &names, &[], 30, KeySize::Rsa2048)
            .unwrap()
            .cert_der;
        let ca_der = ca.cert_der.clone();
        assert_eq!(
            issuing_chain(&[leaf.clone(), ca_der.clone()], &[]),
            Some(vec![ca_der.clone()])
        );
        assert_eq!(
            issuing_chain(
                std::slice::from_ref(&leaf),
                &[other.cert_der.clone(), ca_der.clone()]
            ),
            Some(vec![ca_der.clone()])
        );
        // A CA that did not sign it does not do.
        assert_eq!(
            issuing_chain(&[leaf.clone(), other.cert_der.clone()], &[]),
            None
        );
        assert_eq!(issuing_chain(&[leaf], &[]), None);
        assert_eq!(
            issuing_chain(std::slice::from_ref(&own), &[]),
            Some(vec![own])
        );
    }
}
