//! Crypto-shredding: personal data is sealed under per-subject data keys
//! kept outside the log, so that destroying a key forgets the data while
//! the log, and its hash chain, stay as they are.
//!
//! - A data key (256 bits, random) belongs to one owner, a subject such as
//!   `request:0190…`, `hold:0190…` or `instagram:kh1-…`. It is stored
//!   wrapped (XChaCha20-Poly1305) by the master key, in a [`KeyTable`].
//! - A personal value is sealed with XChaCha20-Poly1305 under its owner's
//!   data key; the associated data binds the owner, the event id and the
//!   field, so a token moved to another owner or field does not open.
//! - External account ids never enter the log: they are replaced by a keyed
//!   hash (HMAC-SHA256 under the lookup key, which is separate from the
//!   master key and stored wrapped by it), `kh1-` and 32 hex digits. Lookups
//!   (a Meta `user_id` to its connections, an auditor's subject) hash the
//!   plain value the same way. The plain id is kept once, sealed under the
//!   account's own key, in the table's directory, so readers can show it
//!   until the account is forgotten.
//! - Forgetting destroys the data key (a tombstone stays, so values sealed
//!   for the owner later are erased at once). Readers then show `[erased]`;
//!   a token that fails to open under a live key is tampering.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use domain::events::LedgerEvent;
use domain::ids::ExternalAccountId;
use domain::personal::{Personal, ERASED_PREFIX, ERASED_TEXT, SEALED_PREFIX};
use domain::subject::{ExternalAccount, Platform, Subject};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;

/// The prefix of a keyed-hash external account id.
pub const PSEUDONYM_PREFIX: &str = "kh1-";
/// Hex digits of a keyed-hash id after its prefix (128 bits).
const PSEUDONYM_HEX_DIGITS: usize = 32;
/// The key table row that holds the lookup (HMAC) key.
pub const LOOKUP_KEY_OWNER: &str = "lethe:lookup-key";
/// Most keys read in one call; readers batch by this.
pub const KEYS_PER_READ_MAX: usize = 500;
/// Most rows re-wrapped per round of a master-key rotation.
const ROTATION_PAGE: usize = 500;
/// XChaCha20-Poly1305 nonce bytes.
const NONCE_BYTES: usize = 24;

/// Why the vault could not seal, open, forget or rotate.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key given (`LETHE_MASTER_KEY` or the key file) is not the
    /// one this store's keys are wrapped with. Start with the right key;
    /// after a rotation, the new one.
    #[error(
        "the master key (id {given}) does not open this store's keys (wrapped by master key id \
         {stored}); start with the key the store was created or last rotated with"
    )]
    WrongMasterKey { given: String, stored: String },
    /// A master key could not be read: not 32 bytes of base64. Fix the
    /// value of `LETHE_MASTER_KEY` or the key file.
    #[error("the master key is not valid: {0}")]
    BadMasterKey(String),
    /// A sealed value or a wrapped key failed its integrity check, or names
    /// a key that never existed: the stored bytes were changed. Nothing is
    /// shown; an operator must look (run `lethe verify`).
    #[error("tampering detected: {0}")]
    Tampered(String),
    /// The key table could not be read or written. Retry later.
    #[error("the key table is unavailable: {0}")]
    Unavailable(String),
}

/// A data key as the key table stores it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// Whose key: a subject (`request:…`) or [`LOOKUP_KEY_OWNER`].
    pub owner: String,
    /// Base64 of nonce and ciphertext of the key under the master key;
    /// `None` once the key is destroyed.
    pub wrapped: Option<String>,
    /// Which master key wrapped it (see [`MasterKey::id`]).
    pub master_id: String,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("owner", &self.owner)
            .field("destroyed", &self.wrapped.is_none())
            .field("master_id", &self.master_id)
            .finish()
    }
}

/// Where data keys and the directory of external ids live: outside the
/// log, in the same database (SQLite or PostgreSQL) or in memory.
#[async_trait]
pub trait KeyTable: Send + Sync {
    /// The keys of `owners` that exist (destroyed ones included), at most
    /// [`KEYS_PER_READ_MAX`] owners a call.
    async fn keys(&self, owners: &[String]) -> Result<Vec<StoredKey>, VaultError>;
    /// Stores `key` unless its owner has one; answers the stored row (the
    /// first writer wins a race).
    async fn insert_key(&self, key: StoredKey) -> Result<StoredKey, VaultError>;
    /// Destroys `owner`'s key, or records a destroyed one if it had none.
    /// Answers whether a live key was destroyed by this call.
    async fn destroy_key(&self, owner: &str, master_id: &str) -> Result<bool, VaultError>;
    /// Keys in owner order after `after`, for rotation.
    async fn key_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredKey>, VaultError>;
    /// Replaces wrapped keys with the same owners, all or none, where
    /// they are still wrapped by `old_master_id`, and never a destroyed
    /// key by a live one (a key forgotten while a rotation ran stays
    /// destroyed).
    async fn rewrap(&self, old_master_id: &str, keys: &[StoredKey]) -> Result<(), VaultError>;
    /// Stores the sealed plain id of a keyed-hash id, unless present.
    async fn insert_directory(&self, pseudonym: &str, token: &str) -> Result<(), VaultError>;
    /// The sealed plain ids of `pseudonyms` that are known.
    async fn directory(&self, pseudonyms: &[String]) -> Result<Vec<(String, String)>, VaultError>;
}

/// The master key: wraps every data key. 32 bytes, written as base64.
#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    bytes: [u8; 32],
    id: String,
}

impl MasterKey {
    /// Reads a key written by [`MasterKey::to_base64`] (surrounding
    /// whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, VaultError> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|e| VaultError::BadMasterKey(format!("not base64: {e}")))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            VaultError::BadMasterKey(format!("{} bytes, expected 32", b.len()))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// A new random key.
    pub fn generate() -> Self {
        Self::from_bytes(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"lethe master key id\0")
            .chain_update(bytes)
            .finalize();
        Self {
            cipher: XChaCha20Poly1305::new(&bytes.into()),
            bytes,
            id: hex::encode(&digest[..8]),
        }
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    /// A public fingerprint of the key, stored beside every wrapped key.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn wrap(&self, owner: &str, key: &[u8; 32]) -> String {
        STANDARD.encode(seal_bytes(&self.cipher, &wrap_aad(owner), key))
    }

    fn unwrap(&self, stored: &StoredKey) -> Result<Option<[u8; 32]>, VaultError> {
        let Some(wrapped) = &stored.wrapped else {
            return Ok(None);
        };
        if stored.master_id != self.id {
            return Err(VaultError::WrongMasterKey {
                given: self.id.clone(),
                stored: stored.master_id.clone(),
            });
        }
        let tampered = || VaultError::Tampered(format!("the data key of {}", stored.owner));
        let bytes = STANDARD.decode(wrapped).map_err(|_| tampered())?;
        let key =
            open_bytes(&self.cipher, &wrap_aad(&stored.owner), &bytes).ok_or_else(tampered)?;
        key.try_into().map(Some).map_err(|_| tampered())
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

fn wrap_aad(owner: &str) -> Vec<u8> {
    format!("lethe data key\0{owner}").into_bytes()
}

fn value_aad(owner: &str, event: &str, field: &str) -> Vec<u8> {
    format!("lethe value\0{owner}\0{event}\0{field}").into_bytes()
}

fn seal_bytes(cipher: &XChaCha20Poly1305, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .expect("XChaCha20-Poly1305 encrypts any message of this size");
    let mut out = nonce.to_vec();
    out.extend(sealed);
    out
}

fn open_bytes(cipher: &XChaCha20Poly1305, aad: &[u8], bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < NONCE_BYTES {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
        .ok()
}

/// Seals and opens personal values; hashes external ids.
pub struct Vault {
    table: Arc<dyn KeyTable>,
    master: MasterKey,
    lookup: Hmac<Sha256>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("master", &self.master)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault of a key table with `master`, creating the lookup
    /// key on first use. Fails with [`VaultError::WrongMasterKey`] when the
    /// table's keys are wrapped by another master key.
    pub async fn open(table: Arc<dyn KeyTable>, master: MasterKey) -> Result<Self, VaultError> {
        let owner = LOOKUP_KEY_OWNER.to_owned();
        let stored = match table.keys(std::slice::from_ref(&owner)).await?.pop() {
            Some(stored) => stored,
            None => {
                let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
                table
                    .insert_key(StoredKey {
                        wrapped: Some(master.wrap(&owner, &key)),
                        owner,
                        master_id: master.id.clone(),
                    })
                    .await?
            }
        };
        let key = master
            .unwrap(&stored)?
            .ok_or_else(|| VaultError::Tampered("the lookup key was destroyed".into()))?;
        let lookup =
            <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length");
        Ok(Self {
            table,
            master,
            lookup,
        })
    }

    /// A vault over an in-memory key table with a random master key: for
    /// tests and for stores that live in memory.
    pub fn ephemeral() -> Self {
        Self::with_memory_table(Arc::new(MemoryKeyTable::default()))
    }

    /// A vault over `table`, an empty in-memory key table, with a random
    /// master key (tests keep the table to tamper with it).
    pub fn with_memory_table(table: Arc<MemoryKeyTable>) -> Self {
        let master = MasterKey::generate();
        let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
        let owner = LOOKUP_KEY_OWNER.to_owned();
        table
            .state
            .try_lock()
            .expect("a new key table is not shared yet")
            .keys
            .insert(
                owner.clone(),
                StoredKey {
                    wrapped: Some(master.wrap(&owner, &key)),
                    owner,
                    master_id: master.id.clone(),
                },
            );
        Self {
            table,
            master,
            lookup: <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("HMAC takes any key length"),
        }
    }

    pub fn master_id(&self) -> &str {
        self.master.id()
    }

    // ---------------------------------------------------------- external ids

    /// The keyed hash that stands for `id` on `platform` everywhere in the
    /// ledger. A value that already is one is returned as it is.
    pub fn pseudonym(&self, platform: Platform, id: &ExternalAccountId) -> ExternalAccountId {
        if is_pseudonym(id.as_str()) {
            return id.clone();
        }
        let mut mac = self.lookup.clone();
        mac.update(platform.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(id.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let text = format!(
            "{PSEUDONYM_PREFIX}{}",
            &hex::encode(digest)[..PSEUDONYM_HEX_DIGITS]
        );
        ExternalAccountId::parse(&text).expect("a keyed-hash id is a valid external id")
    }

    /// A keyed hash of any text (hex), for keys that are derived from
    /// personal data, such as a Meta callback's replay key.
    pub fn keyed_hash(&self, text: &str) -> String {
        let mut mac = self.lookup.clone();
        mac.update(b"lethe keyed text\0");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// `subject` as the ledger names it: an external account by its keyed
    /// hash, anything else unchanged. Stores nothing: for lookups.
    pub fn lookup_subject(&self, subject: &Subject) -> Subject {
        match subject {
            Subject::External(account) => Subject::External(ExternalAccount {
                platform: account.platform,
                id: self.pseudonym(account.platform, &account.id),
            }),
            other => other.clone(),
        }
    }

    /// Like [`Vault::lookup_subject`], and keeps the plain id, sealed under
    /// the account's key, so that readers can show it: for commands that
    /// bring an external id into the ledger.
    pub async fn admit_subject(&self, subject: &Subject) -> Result<Subject, VaultError> {
        if let Subject::External(account) = subject {
            self.admit_external(account.platform, &account.id).await?;
        }
        Ok(self.lookup_subject(subject))
    }

    /// See [`Vault::admit_subject`].
    pub async fn admit_external(
        &self,
        platform: Platform,
        id: &ExternalAccountId,
    ) -> Result<ExternalAccountId, VaultError> {
        let pseudonym = self.pseudonym(platform, id);
        if pseudonym == *id {
            return Ok(pseudonym);
        }
        let owner = format!("{platform}:{pseudonym}");
        if let Some(key) = self.data_key(&owner).await? {
            // The directory entry is bound to its keyed-hash id: the
            // field of its token names it.
            let token = seal_token(
                &key,
                &owner,
                &Uuid::nil().to_string(),
                pseudonym.as_str(),
                id.as_str(),
            );
            self.table
                .insert_directory(pseudonym.as_str(), &token)
                .await?;
        }
        Ok(pseudonym)
    }

    // ---------------------------------------------------------------- seal

    /// Seals every plain personal value of `event` under its owner's key,
    /// bound to `event_id`. Values of forgotten owners are erased instead.
    pub async fn seal_event(
        &self,
        event: &mut LedgerEvent,
        event_id: Uuid,
    ) -> Result<(), VaultError> {
        let event_id = event_id.to_string();
        for field in event.personal_fields() {
            let Some(plain) = field.value.as_plain() else {
                continue;
            };
            let owner = field.owner.to_string();
            match self.data_key(&owner).await? {
                Some(key) => {
                    let token = seal_token(&key, &owner, &event_id, field.field, plain);
                    field.value.seal(token);
                }
                None => field.value.erase(&field.owner),
            }
        }
        Ok(())
    }

    /// `owner`'s live data key, created on first use; `None` once forgotten.
    async fn data_key(&self, owner: &str) -> Result<Option<[u8; 32]>, VaultError> {
        let stored = match self.table.keys(&[owner.to_owned()]).await?.pop() {
            Some(stored) => stored,
            None => {
                let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
                self.table
                    .insert_key(StoredKey {
                        owner: owner.to_owned(),
                        wrapped: Some(self.master.wrap(owner, &key)),
                        master_id: self.master.id.clone(),
                    })
                    .await?
            }
        };
        self.master.unwrap(&stored)
    }

    // -------------------------------------------------------------- forget

    /// Destroys `owner`'s data key (a tombstone if it had none). Answers
    /// whether a live key was destroyed now.
    pub async fn forget(&self, owner: &Subject) -> Result<bool, VaultError> {
        self.table
            .destroy_key(&owner.to_string(), self.master.id())
            .await
    }

    /// Whether `owner` has been forgotten (its key destroyed).
    pub async fn is_forgotten(&self, owner: &Subject) -> Result<bool, VaultError> {
        Ok(self
            .table
            .keys(&[owner.to_string()])
            .await?
            .pop()
            .is_some_and(|k| k.wrapped.is_none()))
    }

    // -------------------------------------------------------------- reveal

    /// Replaces, inside each text, sealed tokens by their plain value,
    /// keyed-hash ids by the plain id, and values of forgotten owners by
    /// `[erased]`. A token that fails to open is [`VaultError::Tampered`].
    pub async fn reveal(&self, texts: &mut [&mut String]) -> Result<(), VaultError> {
        let mut tokens = BTreeSet::new();
        let mut pseudonyms = BTreeSet::new();
        for text in texts.iter() {
            for found in scan(text) {
                match found.kind {
                    Found::Sealed(token) => {
                        tokens.insert(token);
                    }
                    Found::Pseudonym(p) => {
                        pseudonyms.insert(p);
                    }
                    Found::Erased => {}
                }
            }
        }
        if tokens.is_empty() && pseudonyms.is_empty() {
            return Ok(());
        }
        let pseudonyms: Vec<String> = pseudonyms.into_iter().collect();
        let mut directory = BTreeMap::new();
        for chunk in pseudonyms.chunks(KEYS_PER_READ_MAX) {
            directory.extend(self.table.directory(chunk).await?);
        }
        let mut parsed = BTreeMap::new();
        for token in tokens.iter().chain(directory.values()) {
            parsed.insert(token.clone(), Token::parse(token)?);
        }
        let owners: Vec<String> = parsed
            .values()
            .map(|t| t.owner.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut keys = BTreeMap::new();
        for chunk in owners.chunks(KEYS_PER_READ_MAX) {
            for stored in self.table.keys(chunk).await? {
                keys.insert(stored.owner.clone(), self.master.unwrap(&stored)?);
            }
        }
        let open = |token: &str| -> Result<String, VaultError> {
            let parsed = &parsed[token];
            match keys.get(&parsed.owner) {
                None => Err(VaultError::Tampered(format!(
                    "a sealed value names a key that never existed ({})",
                    parsed.owner
                ))),
                Some(None) => Ok(ERASED_TEXT.to_owned()),
                Some(Some(key)) => parsed.open(key),
            }
        };
        let mut plain = BTreeMap::new();
        for token in &tokens {
            plain.insert(token.clone(), open(token)?);
        }
        for pseudonym in &pseudonyms {
            let shown = match directory.get(pseudonym) {
                Some(token) => {
                    let parsed_token = &parsed[token];
                    if parsed_token.field != *pseudonym {
                        return Err(VaultError::Tampered(format!(
                            "the directory entry of {pseudonym} belongs to {}",
                            parsed_token.field
                        )));
                    }
                    open(token)?
                }
                // Admitted while already forgotten, or never admitted.
                None => ERASED_TEXT.to_owned(),
            };
            plain.insert(pseudonym.clone(), shown);
        }
        for text in texts.iter_mut() {
            let found = scan(text);
            if found.is_empty() {
                continue;
            }
            let mut out = String::with_capacity(text.len());
            let mut at = 0;
            for f in found {
                out.push_str(&text[at..f.start]);
                match f.kind {
                    Found::Sealed(token) => out.push_str(&plain[&token]),
                    Found::Pseudonym(p) => out.push_str(&plain[&p]),
                    Found::Erased => out.push_str(ERASED_TEXT),
                }
                at = f.end;
            }
            out.push_str(&text[at..]);
            **text = out;
        }
        Ok(())
    }

    /// Reveals every string inside a JSON value (see [`Vault::reveal`]).
    pub async fn reveal_json(&self, value: &mut serde_json::Value) -> Result<(), VaultError> {
        let mut texts = Vec::new();
        collect_json_strings(value, &mut texts);
        self.reveal(&mut texts).await
    }

    // -------------------------------------------------------------- rotate

    /// Re-wraps every data key (and the lookup key) from this vault's
    /// master key to `new`, page by page; the log is not touched. Answers
    /// how many keys were re-wrapped. See [`Vault::rotate_table`].
    pub async fn rotate(&self, new: &MasterKey) -> Result<u64, VaultError> {
        Self::rotate_table(self.table.as_ref(), &self.master, new).await
    }

    /// Re-wraps every key of `table` from `old` to `new`, page by page.
    /// It needs no vault open, so a rotation that stopped half-way (the
    /// lookup key already under `new`, others still under `old`) is
    /// finished by running it again with the same two keys: keys under
    /// `new` are skipped. A key destroyed meanwhile (forgotten) stays
    /// destroyed: the table writes a re-wrapped key only over a live one.
    pub async fn rotate_table(
        table: &dyn KeyTable,
        old: &MasterKey,
        new: &MasterKey,
    ) -> Result<u64, VaultError> {
        let mut after: Option<String> = None;
        let mut rewrapped = 0;
        loop {
            let page = table.key_page(after.as_deref(), ROTATION_PAGE).await?;
            let Some(last) = page.last() else {
                return Ok(rewrapped);
            };
            after = Some(last.owner.clone());
            let mut batch = Vec::new();
            for stored in &page {
                if stored.master_id == new.id {
                    continue;
                }
                let wrapped = old.unwrap(stored)?.map(|key| new.wrap(&stored.owner, &key));
                batch.push(StoredKey {
                    owner: stored.owner.clone(),
                    wrapped,
                    master_id: new.id.clone(),
                });
            }
            rewrapped += batch.len() as u64;
            table.rewrap(&old.id, &batch).await?;
        }
    }
}

fn collect_json_strings<'a>(value: &'a mut serde_json::Value, out: &mut Vec<&'a mut String>) {
    match value {
        serde_json::Value::String(text) => out.push(text),
        serde_json::Value::Array(items) => {
            for item in items {
                collect_json_strings(item, out);
            }
        }
        serde_json::Value::Object(map) => {
            for item in map.values_mut() {
                collect_json_strings(item, out);
            }
        }
        _ => {}
    }
}

/// Whether `text` is a keyed-hash external id.
pub fn is_pseudonym(text: &str) -> bool {
    text.len() == PSEUDONYM_PREFIX.len() + PSEUDONYM_HEX_DIGITS
        && text.starts_with(PSEUDONYM_PREFIX)
        && text[PSEUDONYM_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn seal_token(key: &[u8; 32], owner: &str, event: &str, field: &str, plain: &str) -> String {
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = seal_bytes(&cipher, &value_aad(owner, event, field), plain.as_bytes());
    format!(
        "{SEALED_PREFIX}{owner}:{event}:{field}:{}",
        URL_SAFE_NO_PAD.encode(sealed)
    )
}

/// A sealed token, taken apart.
#[derive(Debug)]
struct Token {
    owner: String,
    event: String,
    field: String,
    sealed: Vec<u8>,
}

impl Token {
    fn parse(token: &str) -> Result<Self, VaultError> {
        let tampered = || VaultError::Tampered(format!("a sealed value is malformed: {token}"));
        let body = token.strip_prefix(SEALED_PREFIX).ok_or_else(tampered)?;
        let mut parts = body.rsplitn(4, ':');
        let (Some(sealed), Some(field), Some(event), Some(owner)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(tampered());
        };
        Ok(Token {
            owner: owner.to_owned(),
            event: event.to_owned(),
            field: field.to_owned(),
            sealed: URL_SAFE_NO_PAD.decode(sealed).map_err(|_| tampered())?,
        })
    }

    fn open(&self, key: &[u8; 32]) -> Result<String, VaultError> {
        let cipher = XChaCha20Poly1305::new(key.into());
        let aad = value_aad(&self.owner, &self.event, &self.field);
        let plain = open_bytes(&cipher, &aad, &self.sealed).ok_or_else(|| {
            VaultError::Tampered(format!(
                "a sealed {} of {} does not open under its key",
                self.field, self.owner
            ))
        })?;
        String::from_utf8(plain)
            .map_err(|_| VaultError::Tampered(format!("a sealed {} is not text", self.field)))
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Found {
    Sealed(String),
    Pseudonym(String),
    Erased,
}

#[derive(Debug)]
struct Span {
    start: usize,
    end: usize,
    kind: Found,
}

/// Characters of subjects and tokens (ids, `:`, base64url).
fn token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-')
}

fn base64url_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-')
}

/// The key of the first string in `payload` that holds a sealed-value or
/// erased-value marker (`sealed1:`, `erased1:`) and is not one of
/// `sealed`, the stored forms that sealing gave the event's personal
/// values. A reader takes every such marker for a sealed value, so one
/// that came in as an id or a name would read back as tampering.
pub fn stray_marker<'a>(payload: &'a serde_json::Value, sealed: &[String]) -> Option<&'a str> {
    fn walk<'a>(value: &'a serde_json::Value, key: &'a str, sealed: &[String]) -> Option<&'a str> {
        match value {
            serde_json::Value::String(text) => {
                (Personal::holds_marker(text) && !sealed.contains(text)).then_some(key)
            }
            serde_json::Value::Array(items) => items.iter().find_map(|v| walk(v, key, sealed)),
            serde_json::Value::Object(fields) => {
                fields.iter().find_map(|(k, v)| walk(v, k.as_str(), sealed))
            }
            _ => None,
        }
    }
    walk(payload, "body", sealed)
}

/// Finds sealed tokens, erased markers and keyed-hash ids in `text`.
fn scan(text: &str) -> Vec<Span> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with(SEALED_PREFIX) || rest.starts_with(ERASED_PREFIX) {
            let sealed = rest.starts_with(SEALED_PREFIX);
            let mut end = i + SEALED_PREFIX.len();
            while end < bytes.len() && token_char(bytes[end]) {
                end += 1;
            }
            if !sealed {
                while end > i + ERASED_PREFIX.len() && matches!(bytes[end - 1], b'.' | b':') {
                    end -= 1;
                }
            } else {
                // The ciphertext ends at the last base64url character.
                let last_colon = text[i..end].rfind(':').map_or(end, |c| i + c + 1);
                let mut cut = last_colon;
                while cut < end && base64url_char(bytes[cut]) {
                    cut += 1;
                }
                end = cut;
            }
            found.push(Span {
                start: i,
                end,
                kind: if sealed {
                    Found::Sealed(text[i..end].to_owned())
                } else {
                    Found::Erased
                },
            });
            i = end;
            continue;
        }
        let len = PSEUDONYM_PREFIX.len() + PSEUDONYM_HEX_DIGITS;
        if rest.starts_with(PSEUDONYM_PREFIX)
            && rest.get(..len).is_some_and(is_pseudonym)
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && rest
                .as_bytes()
                .get(len)
                .is_none_or(|c| !c.is_ascii_alphanumeric())
        {
            found.push(Span {
                start: i,
                end: i + len,
                kind: Found::Pseudonym(rest[..len].to_owned()),
            });
            i += len;
            continue;
        }
        i += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

// ------------------------------------------------------------------ memory

/// Keys in memory: for tests and for the in-memory store.
#[derive(Default)]
pub struct MemoryKeyTable {
    state: Mutex<MemoryKeys>,
}

#[derive(Default)]
struct MemoryKeys {
    keys: BTreeMap<String, StoredKey>,
    directory: BTreeMap<String, String>,
}

impl fmt::Debug for MemoryKeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryKeyTable")
    }
}

impl MemoryKeyTable {
    /// Changes one stored byte of `owner`'s wrapped key or of a directory
    /// entry: for tamper tests.
    pub async fn corrupt_directory(&self, pseudonym: &str) {
        let mut state = self.state.lock().await;
        if let Some(token) = state.directory.get_mut(pseudonym) {
            flip_last_char(token);
        }
    }
}

/// Changes the last character of a base64 text to another valid one.
pub fn flip_last_char(text: &mut String) {
    if let Some(last) = text.pop() {
        text.push(if last == 'A' { 'B' } else { 'A' });
    }
}

#[async_trait]
impl KeyTable for MemoryKeyTable {
    async fn keys(&self, owners: &[String]) -> Result<Vec<StoredKey>, VaultError> {
        let state = self.state.lock().await;
        Ok(owners
            .iter()
            .filter_map(|o| state.keys.get(o).cloned())
            .collect())
    }

    async fn insert_key(&self, key: StoredKey) -> Result<StoredKey, VaultError> {
        let mut state = self.state.lock().await;
        Ok(state.keys.entry(key.owner.clone()).or_insert(key).clone())
    }

    async fn destroy_key(&self, owner: &str, master_id: &str) -> Result<bool, VaultError> {
        let mut state = self.state.lock().await;
        let entry = state.keys.entry(owner.to_owned()).or_insert(StoredKey {
            owner: owner.to_owned(),
            wrapped: None,
            master_id: master_id.to_owned(),
        });
        Ok(entry.wrapped.take().is_some())
    }

    async fn key_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredKey>, VaultError> {
        let state = self.state.lock().await;
        Ok(state
            .keys
            .values()
            .filter(|k| after.is_none_or(|a| k.owner.as_str() > a))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn rewrap(&self, old_master_id: &str, keys: &[StoredKey]) -> Result<(), VaultError> {
        let mut state = self.state.lock().await;
        for key in keys {
            if let Some(stored) = state.keys.get_mut(&key.owner) {
                // Never bring back a key destroyed since it was read.
                let revives = stored.wrapped.is_none() && key.wrapped.is_some();
                if stored.master_id == old_master_id && !revives {
                    *stored = key.clone();
                }
            }
        }
        Ok(())
    }

    async fn insert_directory(&self, pseudonym: &str, token: &str) -> Result<(), VaultError> {
        let mut state = self.state.lock().await;
        state
            .directory
            .entry(pseudonym.to_owned())
            .or_insert_with(|| token.to_owned());
        Ok(())
    }

    async fn directory(&self, pseudonyms: &[String]) -> Result<Vec<(String, String)>, VaultError> {
        let state = self.state.lock().await;
        Ok(pseudonyms
            .iter()
            .filter_map(|p| state.directory.get(p).map(|t| (p.clone(), t.clone())))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_ids_are_found_inside_text() {
        let text = "deletion (contact sealed1:request:0190-a:0190a0b0-0000-7000-8000-0000000000e1:contact:AbC_-9) \
                    for instagram:kh1-0123456789abcdef0123456789abcdef, erased1:hold:h-1.";
        let found: Vec<Found> = scan(text).into_iter().map(|s| s.kind).collect();
        assert_eq!(
            found,
            vec![
                Found::Sealed(
                    "sealed1:request:0190-a:0190a0b0-0000-7000-8000-0000000000e1:contact:AbC_-9"
                        .into()
                ),
                Found::Pseudonym("kh1-0123456789abcdef0123456789abcdef".into()),
                Found::Erased,
            ]
        );
    }

    #[test]
    fn text_without_tokens_is_left_alone() {
        assert!(scan("kh1-short, sealed in wax, instagram:17841400000000001").is_empty());
        assert!(scan("kh1-ééééééééééééééééééé — naïve kh1-").is_empty());
    }
}
