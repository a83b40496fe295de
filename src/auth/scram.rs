//! SCRAM (RFC 5802, RFC 7677) as mongod runs it: the stored credentials of a user (salt,
//! iteration count, `StoredKey`, `ServerKey`; never the password), and the server side of a
//! conversation (`saslStart` sends the client-first message, the server answers with its
//! first message, `saslContinue` sends the client proof and gets the server signature).
//!
//! The client side ([`ClientConversation`]) is what Monarch's own command-line tools
//! (`monarchd backup`, `export`, `import`) authenticate with.
//!
//! SCRAM-SHA-1 hashes mongod's digest of the password, `hex(md5("user:mongo:password"))`;
//! SCRAM-SHA-256 hashes the password after SASLprep. A conversation for a user that does not
//! exist runs with made-up credentials and fails at the proof, so a client cannot tell a
//! missing user from a wrong password.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Why a SCRAM step failed. Every variant answers the client the same 18
/// AuthenticationFailed; the variant is for the server's log only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// A message that is not SCRAM's syntax.
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    /// Channel binding, which mongod does not offer.
    #[error("channel binding is not supported")]
    ChannelBinding,
    /// The client's final message does not continue the server's nonce.
    #[error("the nonce does not match")]
    Nonce,
    /// The proof does not match the stored key.
    #[error("the proof does not match")]
    Proof,
    /// A name or password SASLprep refuses.
    #[error("SASLprep refused the {0}")]
    Prep(&'static str),
    /// The operating system gave no random bytes.
    #[error("no random bytes: {0}")]
    Random(String),
}

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// `SCRAM-SHA-1`.
    Sha1,
    /// `SCRAM-SHA-256`.
    Sha256,
}

impl Mechanism {
    /// The SASL name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SCRAM-SHA-1",
            Self::Sha256 => "SCRAM-SHA-256",
        }
    }

    /// The mechanism named `name`, if it is one of these.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-1" => Some(Self::Sha1),
            "SCRAM-SHA-256" => Some(Self::Sha256),
            _ => None,
        }
    }

    /// mongod's default iteration count (`scramIterationCount`, `scramSHA256IterationCount`).
    pub fn default_iterations(self) -> u32 {
        match self {
            Self::Sha1 => 10_000,
            Self::Sha256 => 15_000,
        }
    }

    /// The salt length mongod generates: the hash's output length less 4 bytes.
    fn salt_len(self) -> usize {
        match self {
            Self::Sha1 => 16,
            Self::Sha256 => 28,
        }
    }

    fn hmac(self, key: &[u8], message: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => mac::<Hmac<Sha1>>(key, message),
            Self::Sha256 => mac::<Hmac<Sha256>>(key, message),
        }
    }

    fn hash(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha1 => Sha1::digest(bytes).to_vec(),
            Self::Sha256 => Sha256::digest(bytes).to_vec(),
        }
    }

    /// `Hi(password, salt, i)`: PBKDF2 with this mechanism's HMAC.
    fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            Self::Sha1 => {
                let mut out = [0u8; 20];
                pbkdf2::pbkdf2_hmac::<Sha1>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            Self::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(message);
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// What the server keeps of a user's password for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl Credentials {
    /// The credentials of `password` for `user` under `mechanism`, with a fresh salt.
    ///
    /// # Errors
    /// [`ScramError::Prep`] for a password SASLprep refuses (SCRAM-SHA-256);
    /// [`ScramError::Random`] without random bytes for the salt.
    pub fn new(mechanism: Mechanism, user: &str, password: &str, iterations: u32) -> Result<Self, ScramError> {
        let salt = random_bytes(mechanism.salt_len())?;
        Self::with_salt(mechanism, user, password, &salt, iterations)
    }

    /// The credentials of `password` for `user` under `mechanism` with `salt`.
    ///
    /// # Errors
    /// [`ScramError::Prep`] for a password SASLprep refuses (SCRAM-SHA-256).
    pub fn with_salt(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Result<Self, ScramError> {
        let secret = match mechanism {
            Mechanism::Sha1 => mongo_digest(user, password).into_bytes(),
            Mechanism::Sha256 => {
                stringprep::saslprep(password).map_err(|_| ScramError::Prep("password"))?.as_bytes().to_vec()
            }
        };
        let salted = mechanism.salted_password(&secret, salt, iterations);
        Ok(Self::from_salted_password(mechanism, &salted, salt, iterations))
    }

    fn from_salted_password(mechanism: Mechanism, salted: &[u8], salt: &[u8], iterations: u32) -> Self {
        let client_key = mechanism.hmac(salted, b"Client Key");
        Self {
            iterations,
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted, b"Server Key"),
        }
    }

    /// The form mongod keeps in `admin.system.users` (`credentials.<mechanism>`):
    /// `{iterationCount, salt, storedKey, serverKey}`, the byte strings in base64.
    pub fn to_document(&self) -> bson::Document {
        bson::doc! {
            "iterationCount": i32::try_from(self.iterations).unwrap_or(i32::MAX),
            "salt": BASE64.encode(&self.salt),
            "storedKey": BASE64.encode(&self.stored_key),
            "serverKey": BASE64.encode(&self.server_key),
        }
    }

    /// Reads [`Credentials::to_document`]'s form back; `None` when a field is missing or
    /// malformed.
    pub fn from_document(document: &bson::Document) -> Option<Self> {
        let bytes = |field: &str| document.get_str(field).ok().and_then(|s| BASE64.decode(s).ok());
        Some(Self {
            iterations: u32::try_from(document.get_i32("iterationCount").ok()?).ok()?,
            salt: bytes("salt")?,
            stored_key: bytes("storedKey")?,
            server_key: bytes("serverKey")?,
        })
    }
}

/// mongod's password digest for SCRAM-SHA-1 (and MONGODB-CR before it):
/// `hex(md5("<user>:mongo:<password>"))`.
pub fn mongo_digest(user: &str, password: &str) -> String {
    let digest = Md5::digest(format!("{user}:mongo:{password}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes(n: usize) -> Result<Vec<u8>, ScramError> {
    let mut out = vec![0u8; n];
    getrandom::fill(&mut out).map_err(|e| ScramError::Random(e.to_string()))?;
    Ok(out)
}

/// The server side of one SCRAM conversation, after the client's first message.
#[derive(Debug, Clone)]
pub struct ServerConversation {
    mechanism: Mechanism,
    /// The user name the client sent (decoded, and for SCRAM-SHA-256 as written: mongod
    /// looks users up by the name the client gives).
    user: String,
    credentials: Credentials,
    /// Whether the credentials are made up (the user does not exist): the proof then fails.
    unknown_user: bool,
    /// The gs2 header, which the client's final message must echo (`c=`).
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    /// The client's nonce followed by the server's.
    nonce: String,
}

/// The parts of a client-first message.
struct ClientFirst {
    gs2_header: String,
    bare: String,
    user: String,
    nonce: String,
}

fn parse_client_first(message: &str) -> Result<ClientFirst, ScramError> {
    // gs2-header: "n,," or "y,," (no channel binding), optionally with "a=authzid".
    let mut parts = message.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed("gs2 flag"))?;
    let authzid = parts.next().ok_or(ScramError::Malformed("gs2 header"))?;
    let bare = parts.next().ok_or(ScramError::Malformed("client-first-message-bare"))?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed("gs2 flag")),
    }
    if !(authzid.is_empty() || authzid.starts_with("a=")) {
        return Err(ScramError::Malformed("authzid"));
    }
    let (mut user, mut nonce) = (None, None);
    for attribute in bare.split(',') {
        match attribute.split_once('=') {
            Some(("n", name)) => user = Some(decode_name(name)?),
            Some(("r", r)) => nonce = Some(r.to_owned()),
            Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
            _ => {}
        }
    }
    let user = user.ok_or(ScramError::Malformed("user name"))?;
    let nonce = nonce.filter(|n| !n.is_empty() && n.is_ascii()).ok_or(ScramError::Malformed("nonce"))?;
    Ok(ClientFirst { gs2_header: format!("{flag},{authzid},"), bare: bare.to_owned(), user, nonce })
}

/// A SCRAM user name: `=2C` is a comma, `=3D` an equals sign, nothing else may follow `=`.
fn decode_name(name: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('=') {
        out.push_str(rest.get(..at).unwrap_or_default());
        let escape = rest.get(at..at + 3).ok_or(ScramError::Malformed("user name escape"))?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return Err(ScramError::Malformed("user name escape")),
        });
        rest = rest.get(at + 3..).unwrap_or_default();
    }
    out.push_str(rest);
    if out.is_empty() {
        return Err(ScramError::Malformed("user name"));
    }
    Ok(out)
}

impl ServerConversation {
    /// Reads the client's first message and answers the server's: `lookup` gives the user's
    /// stored credentials for this mechanism, `None` when there is no such user.
    ///
    /// # Errors
    /// [`ScramError`] for a malformed message or channel binding.
    pub fn start(
        mechanism: Mechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credentials>,
    ) -> Result<(Self, Vec<u8>), ScramError> {
        let server_nonce = BASE64.encode(random_bytes(24)?);
        Self::start_with_nonce(mechanism, client_first, lookup, &server_nonce)
    }

    fn start_with_nonce(
        mechanism: Mechanism,
        client_first: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credentials>,
        server_nonce: &str,
    ) -> Result<(Self, Vec<u8>), ScramError> {
        let message = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let first = parse_client_first(message)?;
        let (credentials, unknown_user) = match lookup(&first.user) {
            Some(credentials) => (credentials, false),
            None => {
                // Made-up credentials, so the reply looks like a real user's.
                let salt = random_bytes(mechanism.salt_len())?;
                let key = random_bytes(32)?;
                (
                    Credentials {
                        iterations: mechanism.default_iterations(),
                        salt,
                        stored_key: key.clone(),
                        server_key: key,
                    },
                    true,
                )
            }
        };
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!("r={nonce},s={},i={}", BASE64.encode(&credentials.salt), credentials.iterations);
        let reply = server_first.clone().into_bytes();
        let conversation = Self {
            mechanism,
            user: first.user,
            credentials,
            unknown_user,
            gs2_header: first.gs2_header,
            client_first_bare: first.bare,
            server_first,
            nonce,
        };
        Ok((conversation, reply))
    }

    /// The user name the client authenticates as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The mechanism.
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Checks the client's proof and answers the server's final message (`v=<signature>`).
    ///
    /// # Errors
    /// [`ScramError::Proof`] for a wrong password or unknown user, [`ScramError::Nonce`] for
    /// a foreign or replayed nonce, [`ScramError::Malformed`] for bad syntax.
    pub fn finish(&self, client_final: &[u8]) -> Result<Vec<u8>, ScramError> {
        let message = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = message.rsplit_once(",p=").ok_or(ScramError::Malformed("proof"))?;
        let (mut binding, mut nonce) = (None, None);
        for attribute in without_proof.split(',') {
            match attribute.split_once('=') {
                Some(("c", c)) => binding = Some(c),
                Some(("r", r)) => nonce = Some(r),
                _ => {}
            }
        }
        let binding = binding.ok_or(ScramError::Malformed("channel binding"))?;
        if BASE64.decode(binding).ok().as_deref() != Some(self.gs2_header.as_bytes()) {
            return Err(ScramError::ChannelBinding);
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof = BASE64.decode(proof).map_err(|_| ScramError::Malformed("proof"))?;
        let auth_message = format!("{},{},{without_proof}", self.client_first_bare, self.server_first);
        let client_signature = self.mechanism.hmac(&self.credentials.stored_key, auth_message.as_bytes());
        if proof.len() != client_signature.len() {
            return Err(ScramError::Proof);
        }
        let client_key: Vec<u8> = proof.iter().zip(&client_signature).map(|(p, s)| p ^ s).collect();
        let matches = bool::from(self.mechanism.hash(&client_key).ct_eq(&self.credentials.stored_key));
        if !matches || self.unknown_user {
            return Err(ScramError::Proof);
        }
        let server_signature = self.mechanism.hmac(&self.credentials.server_key, auth_message.as_bytes());
        Ok(format!("v={}", BASE64.encode(server_signature)).into_bytes())
    }
}

/// The client side of one SCRAM conversation: the client-first message, then the proof for
/// the server's first message, then the check of the server's signature.
#[derive(Debug, Clone)]
pub struct ClientConversation {
    mechanism: Mechanism,
    /// What PBKDF2 hashes: mongod's digest of the password (SHA-1) or the SASLprepped
    /// password (SHA-256).
    secret: Vec<u8>,
    client_first_bare: String,
    nonce: String,
}

/// The client's final message and the server signature that must answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    /// The message to send (`c=biws,r=...,p=...`).
    pub message: Vec<u8>,
    /// The server's final message as it must be (`v=...`).
    pub expected_server_final: Vec<u8>,
}

impl ClientConversation {
    /// Starts a conversation for `user` with `password`; returns it and the client-first
    /// message to send with `saslStart`.
    ///
    /// # Errors
    /// [`ScramError::Prep`] for a password SASLprep refuses (SCRAM-SHA-256);
    /// [`ScramError::Random`] without random bytes for the nonce.
    pub fn start(mechanism: Mechanism, user: &str, password: &str) -> Result<(Self, Vec<u8>), ScramError> {
        let nonce = BASE64.encode(random_bytes(24)?);
        Self::start_with_nonce(mechanism, user, password, &nonce)
    }

    fn start_with_nonce(
        mechanism: Mechanism,
        user: &str,
        password: &str,
        nonce: &str,
    ) -> Result<(Self, Vec<u8>), ScramError> {
        let secret = match mechanism {
            Mechanism::Sha1 => mongo_digest(user, password).into_bytes(),
            Mechanism::Sha256 => {
                stringprep::saslprep(password).map_err(|_| ScramError::Prep("password"))?.as_bytes().to_vec()
            }
        };
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={nonce}");
        let message = format!("n,,{client_first_bare}").into_bytes();
        Ok((Self { mechanism, secret, client_first_bare, nonce: nonce.to_owned() }, message))
    }

    /// Answers the server's first message (`r=...,s=...,i=...`) with the client's proof.
    ///
    /// # Errors
    /// [`ScramError::Nonce`] when the server's nonce does not continue the client's;
    /// [`ScramError::Malformed`] for bad syntax or an iteration count under 4096.
    pub fn respond(&self, server_first: &[u8]) -> Result<ClientFinal, ScramError> {
        let message = std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for attribute in message.split(',') {
            match attribute.split_once('=') {
                Some(("r", r)) => nonce = Some(r),
                Some(("s", s)) => salt = BASE64.decode(s).ok(),
                Some(("i", i)) => iterations = i.parse::<u32>().ok(),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Nonce);
        }
        let salt = salt.ok_or(ScramError::Malformed("salt"))?;
        // RFC 7677's floor: a server asking for fewer rounds weakens the password's hash.
        let iterations = iterations.filter(|i| *i >= 4096).ok_or(ScramError::Malformed("iteration count"))?;
        let salted = self.mechanism.salted_password(&self.secret, &salt, iterations);
        let client_key = self.mechanism.hmac(&salted, b"Client Key");
        let stored_key = self.mechanism.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{message},{without_proof}", self.client_first_bare);
        let signature = self.mechanism.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = self.mechanism.hmac(&salted, b"Server Key");
        let server_signature = self.mechanism.hmac(&server_key, auth_message.as_bytes());
        Ok(ClientFinal {
            message: format!("{without_proof},p={}", BASE64.encode(proof)).into_bytes(),
            expected_server_final: format!("v={}", BASE64.encode(server_signature)).into_bytes(),
        })
    }
}

impl ClientFinal {
    /// Checks the server's final message: a server that does not know the password cannot
    /// produce it.
    ///
    /// # Errors
    /// [`ScramError::Proof`] when it is not the expected signature.
    pub fn check_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        if bool::from(server_final.ct_eq(&self.expected_server_final)) {
            return Ok(());
        }
        Err(ScramError::Proof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802's example: SCRAM-SHA-1 of "pencil" (the RFC hashes the password itself, not
    /// mongod's digest of it).
    #[test]
    fn rfc_5802_sha1_example() -> Result<(), ScramError> {
        let salt = BASE64.decode("QSXCR+Q6sek8bf92").map_err(|_| ScramError::Malformed("salt"))?;
        let salted = Mechanism::Sha1.salted_password(b"pencil", &salt, 4096);
        let credentials = Credentials::from_salted_password(Mechanism::Sha1, &salted, &salt, 4096);
        let (conversation, first) = ServerConversation::start_with_nonce(
            Mechanism::Sha1,
            b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
            |_| Some(credentials.clone()),
            "3rfcNHYJY1ZVvWVs7j",
        )?;
        assert_eq!(first, b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096".to_vec());
        let last = conversation
            .finish(b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")?;
        assert_eq!(last, b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=".to_vec());
        Ok(())
    }

    /// RFC 7677's example: SCRAM-SHA-256 of "pencil".
    #[test]
    fn rfc_7677_sha256_example() -> Result<(), ScramError> {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").map_err(|_| ScramError::Malformed("salt"))?;
        let credentials = Credentials::with_salt(Mechanism::Sha256, "user", "pencil", &salt, 4096)?;
        let (conversation, first) = ServerConversation::start_with_nonce(
            Mechanism::Sha256,
            b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            |_| Some(credentials.clone()),
            "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        )?;
        assert_eq!(
            first,
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".to_vec()
        );
        let last = conversation.finish(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )?;
        assert_eq!(last, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec());
        Ok(())
    }

    #[test]
    fn client_conversation_matches_rfc_7677_and_talks_to_the_server_side() -> Result<(), ScramError> {
        let (client, first) =
            ClientConversation::start_with_nonce(Mechanism::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO")?;
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec());
        let last = client
            .respond(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")?;
        assert_eq!(
            last.message,
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
                .to_vec()
        );
        last.check_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")?;
        assert_eq!(last.check_server_final(b"v=AAAA"), Err(ScramError::Proof));
        // A nonce the server did not extend, and too few iterations, are refused.
        assert_eq!(client.respond(b"r=rOprNGfwEbeRWgbNEkqO,s=AAAA,i=4096"), Err(ScramError::Nonce));
        assert_eq!(
            client.respond(b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1"),
            Err(ScramError::Malformed("iteration count"))
        );

        // Both sides of this module, SCRAM-SHA-1 (mongod's digest) with a name to escape.
        let credentials = Credentials::new(Mechanism::Sha1, "a,b=c", "secret", 4096)?;
        let (client, first) = ClientConversation::start(Mechanism::Sha1, "a,b=c", "secret")?;
        let (server, server_first) =
            ServerConversation::start(Mechanism::Sha1, &first, |user| (user == "a,b=c").then(|| credentials.clone()))?;
        let last = client.respond(&server_first)?;
        last.check_server_final(&server.finish(&last.message)?)?;
        let (wrong, first) = ClientConversation::start(Mechanism::Sha1, "a,b=c", "guess")?;
        let (server, server_first) = ServerConversation::start(Mechanism::Sha1, &first, |_| Some(credentials.clone()))?;
        assert_eq!(server.finish(&wrong.respond(&server_first)?.message), Err(ScramError::Proof));
        Ok(())
    }

    #[test]
    fn wrong_proofs_unknown_users_and_foreign_nonces_fail_alike() -> Result<(), ScramError> {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").map_err(|_| ScramError::Malformed("salt"))?;
        let credentials = Credentials::with_salt(Mechanism::Sha256, "user", "pencil", &salt, 4096)?;
        let client_final =
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let start = |lookup: Option<Credentials>| {
            ServerConversation::start_with_nonce(
                Mechanism::Sha256,
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                |_| lookup,
                "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
            )
        };
        // Another password's credentials: the same proof fails.
        let other = Credentials::with_salt(Mechanism::Sha256, "user", "pencils", &salt, 4096)?;
        assert_eq!(start(Some(other))?.0.finish(client_final), Err(ScramError::Proof));
        // No such user: the server still answers a first message, and the proof fails.
        let (unknown, first) = start(None)?;
        assert!(first.starts_with(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s="));
        assert_eq!(unknown.finish(client_final), Err(ScramError::Proof));
        // A nonce that is not the conversation's.
        let (conversation, _) = start(Some(credentials))?;
        assert_eq!(conversation.finish(b"c=biws,r=other,p=AAAA"), Err(ScramError::Nonce));
        assert_eq!(conversation.finish(b"c=eSws,r=x,p=AAAA"), Err(ScramError::ChannelBinding));
        assert_eq!(conversation.finish(b"garbage"), Err(ScramError::Malformed("proof")));
        Ok(())
    }

    #[test]
    fn malformed_first_messages_are_refused() {
        let start = |m: &[u8]| ServerConversation::start(Mechanism::Sha256, m, |_| None).err();
        assert_eq!(start(b"p=tls-unique,,n=u,r=x"), Some(ScramError::ChannelBinding));
        assert_eq!(start(b"n,,r=x"), Some(ScramError::Malformed("user name")));
        assert_eq!(start(b"n,,n=u"), Some(ScramError::Malformed("nonce")));
        assert_eq!(start(b"n,,n=a=2Db,r=x"), Some(ScramError::Malformed("user name escape")));
        assert_eq!(start(b"x"), Some(ScramError::Malformed("gs2 header")));
        assert_eq!(start(&[0xff, 0xfe]), Some(ScramError::Malformed("not UTF-8")));
        assert!(ServerConversation::start(Mechanism::Sha256, b"n,,n=a=2Cb=3Dc,r=x", |_| None).is_ok());
    }

    #[test]
    fn stored_credentials_round_trip_and_sha1_uses_mongods_digest() -> Result<(), ScramError> {
        assert_eq!(mongo_digest("user", "pencil"), "1c33006ec1ffd90f9cadcbcc0e118200");
        let credentials = Credentials::new(Mechanism::Sha1, "user", "pencil", 10_000)?;
        assert_eq!(credentials.salt.len(), 16);
        assert_eq!(Credentials::from_document(&credentials.to_document()), Some(credentials));
        let credentials = Credentials::new(Mechanism::Sha256, "user", "pencil", 15_000)?;
        assert_eq!(credentials.salt.len(), 28);
        assert_eq!(Credentials::from_document(&credentials.to_document()), Some(credentials));
        // A prohibited character (U+0007) is refused by SASLprep.
        assert_eq!(Credentials::new(Mechanism::Sha256, "u", "a\u{7}b", 4096), Err(ScramError::Prep("password")));
        Ok(())
    }
}
