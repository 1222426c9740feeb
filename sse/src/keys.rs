//! The key hierarchy of SSE-S3:
//!
//! - a [`DataKey`] per body (random, 256 bits) seals its chunks;
//! - the cluster's [`MasterKey`]s (a [`Keyring`]: numbered, one active) wrap the data keys
//!   kept in object records; rotating adds a master key and re-wraps data keys, never
//!   touching object data;
//! - named [`KmsKey`]s (SSE-KMS, the built-in key management service) wrap the data keys of
//!   bodies written with `aws:kms`, each under the key the client (or the bucket) named;
//! - the key-encryption key ([`Kek`]) seals master and KMS keys where metadata stores them, so
//!   metadata (and a copy of its files) never holds a master key in the clear. It comes from
//!   the operator (a file only its owner may read, or an environment variable) or, when none
//!   is given, is derived from the cluster secret that every node of a cluster already holds.
//!
//! Every wrap is AES-256-GCM with a random 96-bit nonce, stored as nonce ‖ ciphertext ‖ tag,
//! with associated data naming what is wrapped (so a wrapped key cannot be passed off as
//! another kind or another master key's).

use std::collections::BTreeMap;
use std::path::Path;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use crate::{random, SseError};

const NONCE: usize = 12;

/// A 256-bit key that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A fresh random key.
    pub fn generate() -> Result<DataKey, SseError> {
        let mut k = [0u8; 32];
        random(&mut k)?;
        Ok(DataKey(k))
    }

    pub fn from_bytes(b: [u8; 32]) -> DataKey {
        DataKey(b)
    }

    pub fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Seals `key` under `wrapping` with associated data `aad`: nonce ‖ ciphertext ‖ tag.
pub(crate) fn wrap(wrapping: &[u8; 32], aad: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, SseError> {
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, wrapping).expect("32-byte key"));
    let mut n = [0u8; NONCE];
    random(&mut n)?;
    let mut out = n.to_vec();
    out.extend_from_slice(key);
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(n),
            Aad::from(aad),
            &mut out[NONCE..],
        )
        .map_err(|_| SseError::WrongKey)?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens what [`wrap`] sealed; any mismatch is [`SseError::WrongKey`].
pub(crate) fn unwrap(wrapping: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<[u8; 32], SseError> {
    if sealed.len() != NONCE + 32 + crate::TAG {
        return Err(SseError::WrongKey);
    }
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, wrapping).expect("32-byte key"));
    let n: [u8; NONCE] = sealed[..NONCE].try_into().expect("length checked");
    let mut buf = sealed[NONCE..].to_vec();
    let plain = k
        .open_in_place(Nonce::assume_unique_for_key(n), Aad::from(aad), &mut buf)
        .map_err(|_| SseError::WrongKey)?;
    plain.try_into().map_err(|_| SseError::WrongKey)
}

/// One master key of the cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    pub id: u32,
    key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

impl MasterKey {
    /// A new random master key numbered `id`.
    pub fn generate(id: u32) -> Result<MasterKey, SseError> {
        let mut key = [0u8; 32];
        random(&mut key)?;
        Ok(MasterKey { id, key })
    }

    fn aad(id: u32) -> Vec<u8> {
        let mut a = b"cairn master key ".to_vec();
        a.extend_from_slice(&id.to_be_bytes());
        a
    }

    /// The key sealed under `kek`, as metadata stores it.
    pub fn seal(&self, kek: &Kek) -> Result<Vec<u8>, SseError> {
        wrap(&kek.0, &Self::aad(self.id), &self.key)
    }

    /// Opens a key [`Self::seal`] sealed; a wrong `kek` is [`SseError::WrongKey`].
    pub fn open(id: u32, sealed: &[u8], kek: &Kek) -> Result<MasterKey, SseError> {
        Ok(MasterKey {
            id,
            key: unwrap(&kek.0, &Self::aad(id), sealed)?,
        })
    }

    fn data_aad(id: u32) -> Vec<u8> {
        let mut a = b"cairn data key under master ".to_vec();
        a.extend_from_slice(&id.to_be_bytes());
        a
    }
}

/// One named key of the built-in key management service (SSE-KMS): a client names it in
/// `x-amz-server-side-encryption-aws-kms-key-id` and the data keys of what it writes are
/// wrapped by it. Unlike master keys, KMS keys are never rotated away: what one wrapped
/// stays wrapped by it.
#[derive(Clone, PartialEq, Eq)]
pub struct KmsKey {
    pub name: String,
    key: [u8; 32],
}

impl std::fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KmsKey({})", self.name)
    }
}

impl KmsKey {
    /// Longest key name accepted.
    pub const MAX_NAME: usize = 256;

    /// Whether `name` can name a KMS key: 1 to [`Self::MAX_NAME`] ASCII letters, digits and
    /// `/ _ - . :` (what AWS key ids, aliases and ARNs use).
    pub fn valid_name(name: &str) -> bool {
        !name.is_empty()
            && name.len() <= Self::MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-.:".contains(&b))
    }

    /// A new random key named `name`.
    pub fn generate(name: &str) -> Result<KmsKey, SseError> {
        let mut key = [0u8; 32];
        random(&mut key)?;
        Ok(KmsKey {
            name: name.to_string(),
            key,
        })
    }

    fn aad(kind: &str, name: &str) -> Vec<u8> {
        let mut a = format!("cairn {kind} ").into_bytes();
        a.extend_from_slice(name.as_bytes());
        a
    }

    /// The key sealed under `kek`, as metadata stores it.
    pub fn seal(&self, kek: &Kek) -> Result<Vec<u8>, SseError> {
        wrap(&kek.0, &Self::aad("kms key", &self.name), &self.key)
    }

    /// Opens a key [`Self::seal`] sealed; a wrong `kek` or name is [`SseError::WrongKey`].
    pub fn open(name: &str, sealed: &[u8], kek: &Kek) -> Result<KmsKey, SseError> {
        Ok(KmsKey {
            name: name.to_string(),
            key: unwrap(&kek.0, &Self::aad("kms key", name), sealed)?,
        })
    }
}

/// The keys a node holds: the master keys, one of them active (the one new SSE-S3 data
/// keys are wrapped with; the highest id), and the named KMS keys.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    keys: BTreeMap<u32, MasterKey>,
    kms: BTreeMap<String, KmsKey>,
}

impl Keyring {
    pub fn new(keys: impl IntoIterator<Item = MasterKey>) -> Keyring {
        Keyring {
            keys: keys.into_iter().map(|k| (k.id, k)).collect(),
            kms: BTreeMap::new(),
        }
    }

    /// This keyring with the KMS keys `kms` too.
    pub fn with_kms(mut self, kms: impl IntoIterator<Item = KmsKey>) -> Keyring {
        self.kms = kms.into_iter().map(|k| (k.name.clone(), k)).collect();
        self
    }

    /// The names of the KMS keys, sorted.
    pub fn kms_names(&self) -> Vec<String> {
        self.kms.keys().cloned().collect()
    }

    pub fn has_kms(&self, name: &str) -> bool {
        self.kms.contains_key(name)
    }

    /// Wraps `dk` with KMS key `name`.
    pub fn wrap_kms(&self, name: &str, dk: &DataKey) -> Result<Vec<u8>, SseError> {
        let k = self
            .kms
            .get(name)
            .ok_or_else(|| SseError::UnknownKmsKey(name.to_string()))?;
        wrap(&k.key, &KmsKey::aad("data key under kms key", name), &dk.0)
    }

    /// Opens a data key wrapped by KMS key `name`.
    pub fn unwrap_kms(&self, name: &str, wrapped: &[u8]) -> Result<DataKey, SseError> {
        let k = self
            .kms
            .get(name)
            .ok_or_else(|| SseError::UnknownKmsKey(name.to_string()))?;
        Ok(DataKey(unwrap(
            &k.key,
            &KmsKey::aad("data key under kms key", name),
            wrapped,
        )?))
    }

    /// The id of the active master key (`None`: the keyring is empty).
    pub fn active(&self) -> Option<u32> {
        self.keys.keys().next_back().copied()
    }

    pub fn ids(&self) -> Vec<u32> {
        self.keys.keys().copied().collect()
    }

    /// Wraps `dk` with the active master key: its id and the wrapped key.
    pub fn wrap(&self, dk: &DataKey) -> Result<(u32, Vec<u8>), SseError> {
        let mk = self
            .keys
            .values()
            .next_back()
            .ok_or(SseError::UnknownMasterKey(0))?;
        Ok((mk.id, wrap(&mk.key, &MasterKey::data_aad(mk.id), &dk.0)?))
    }

    /// Opens a data key wrapped by master key `id`.
    pub fn unwrap(&self, id: u32, wrapped: &[u8]) -> Result<DataKey, SseError> {
        let mk = self.keys.get(&id).ok_or(SseError::UnknownMasterKey(id))?;
        Ok(DataKey(unwrap(&mk.key, &MasterKey::data_aad(id), wrapped)?))
    }
}

/// The key-encryption key that seals master keys in metadata.
#[derive(Clone)]
pub struct Kek([u8; 32]);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Kek, SseError> {
        let raw = hex::decode(text.trim())
            .map_err(|_| SseError::Kek("not hex: expected 64 hex digits (32 bytes)".into()))?;
        let key: [u8; 32] = raw
            .try_into()
            .map_err(|_| SseError::Kek("expected 64 hex digits (32 bytes)".into()))?;
        Ok(Kek(key))
    }

    /// Reads a key file holding 64 hex digits. On Unix the file must not be readable by
    /// its group or others (like an SSH private key).
    pub fn from_file(path: &Path) -> Result<Kek, SseError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| SseError::Kek(format!("{}: {e}", path.display())))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(SseError::Kek(format!(
                    "{} is readable by others (mode {:o}); make it 0600",
                    path.display(),
                    mode & 0o777
                )));
            }
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| SseError::Kek(format!("{}: {e}", path.display())))?;
        Kek::from_hex(&text)
    }

    /// Derives the key from the cluster secret (HKDF-SHA256), for clusters whose operator
    /// gave none: every node holds the secret, so every node derives the same key.
    pub fn derive(cluster_secret: &str) -> Kek {
        use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
        struct Len32;
        impl aws_lc_rs::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let prk = Salt::new(HKDF_SHA256, b"cairn sse kek v1").extract(cluster_secret.as_bytes());
        let mut out = [0u8; 32];
        prk.expand(&[b"master key sealing"], Len32)
            .and_then(|okm| okm.fill(&mut out))
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Kek(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keys_open_only_under_their_master_key() {
        let ring = Keyring::new([MasterKey::generate(1).unwrap()]);
        let dk = DataKey::generate().unwrap();
        let (id, w) = ring.wrap(&dk).unwrap();
        assert_eq!(id, 1);
        assert_eq!(ring.unwrap(1, &w).unwrap(), dk);
        assert!(matches!(
            ring.unwrap(2, &w),
            Err(SseError::UnknownMasterKey(2))
        ));
        let mut bad = w.clone();
        bad[20] ^= 1;
        assert!(matches!(ring.unwrap(1, &bad), Err(SseError::WrongKey)));
        // A newer key becomes the active one; the old one still opens what it wrapped.
        let ring = Keyring::new([ring.keys[&1].clone(), MasterKey::generate(2).unwrap()]);
        assert_eq!(ring.active(), Some(2));
        assert_eq!(ring.unwrap(1, &w).unwrap(), dk);
        assert_eq!(ring.wrap(&dk).unwrap().0, 2);
    }

    #[test]
    fn kms_keys_wrap_data_keys_under_their_own_name_only() {
        let kek = Kek::derive("secret");
        let a = KmsKey::generate("testkey-1").unwrap();
        let sealed = a.seal(&kek).unwrap();
        assert_eq!(KmsKey::open("testkey-1", &sealed, &kek).unwrap(), a);
        // Sealed as "testkey-1": not accepted under another name or another KEK.
        assert!(KmsKey::open("testkey-2", &sealed, &kek).is_err());
        assert!(KmsKey::open("testkey-1", &sealed, &Kek::derive("other")).is_err());
        let ring = Keyring::new([MasterKey::generate(1).unwrap()])
            .with_kms([a, KmsKey::generate("testkey-2").unwrap()]);
        assert_eq!(ring.kms_names(), ["testkey-1", "testkey-2"]);
        let dk = DataKey::generate().unwrap();
        let w = ring.wrap_kms("testkey-1", &dk).unwrap();
        assert_eq!(ring.unwrap_kms("testkey-1", &w).unwrap(), dk);
        assert!(matches!(
            ring.unwrap_kms("testkey-2", &w),
            Err(SseError::WrongKey)
        ));
        assert!(matches!(
            ring.wrap_kms("nope", &dk),
            Err(SseError::UnknownKmsKey(n)) if n == "nope"
        ));
        assert!(KmsKey::valid_name("alias/aws/s3"));
        assert!(KmsKey::valid_name("arn:aws:kms:us-east-1:1:key/x-1.2"));
        assert!(!KmsKey::valid_name(""));
        assert!(!KmsKey::valid_name("a b"));
        assert!(!KmsKey::valid_name(&"k".repeat(257)));
    }

    #[test]
    fn master_keys_seal_under_the_kek_and_a_wrong_kek_fails() {
        let mk = MasterKey::generate(7).unwrap();
        let kek = Kek::derive("secret");
        let sealed = mk.seal(&kek).unwrap();
        assert_eq!(MasterKey::open(7, &sealed, &kek).unwrap(), mk);
        assert!(MasterKey::open(7, &sealed, &Kek::derive("other")).is_err());
        // Sealed for id 7, so not accepted as key 8.
        assert!(MasterKey::open(8, &sealed, &kek).is_err());
        assert!(Kek::from_hex("abcd").is_err());
        assert!(Kek::from_hex(&"ab".repeat(32)).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cairn-kek-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kek");
        std::fs::write(&path, "cd".repeat(32)).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(format!("{}", Kek::from_file(&path).unwrap_err()).contains("0600"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Kek::from_file(&path).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
