//! MONGODB-X509: the user a client certificate names is its subject, written as mongod writes
//! it (RFC 2253: the most specific name first, `CN=client,OU=apps,O=Shop,C=US`).

use x509_parser::prelude::{FromDer, X509Certificate};

/// The short names RFC 2253 (and OpenSSL, which mongod uses) give the usual attribute types.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.12", "title"),
    ("2.5.4.42", "GN"),
    ("2.5.4.4", "SN"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
];

/// `value` escaped as RFC 2253 requires.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The subject of the DER certificate `der` in RFC 2253 form.
///
/// # Errors
/// The certificate cannot be parsed.
pub fn subject_name(der: &[u8]) -> Result<String, String> {
    let (_, certificate) = X509Certificate::from_der(der).map_err(|e| e.to_string())?;
    let mut rdns = Vec::new();
    for rdn in certificate.subject().iter_rdn() {
        let parts: Vec<String> = rdn
            .iter()
            .map(|attribute| {
                let oid = attribute.attr_type().to_id_string();
                let name = SHORT_NAMES.iter().find(|(id, _)| *id == oid).map_or(oid.as_str(), |(_, short)| short);
                match attribute.as_str() {
                    Ok(text) => format!("{name}={}", escape(text)),
                    Err(_) => {
                        let hex: String = attribute.as_slice().iter().map(|b| format!("{b:02x}")).collect();
                        format!("{name}=#{hex}")
                    }
                }
            })
            .collect();
        rdns.push(parts.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        assert_eq!(escape("Shop, Inc."), "Shop\\, Inc.");
        assert_eq!(escape(" lead"), "\\ lead");
        assert_eq!(escape("#1"), "\\#1");
        assert_eq!(escape("plain"), "plain");
        assert!(subject_name(b"not a certificate").is_err());
    }
}
