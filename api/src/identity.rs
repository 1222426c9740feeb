//! Who a key is to S3 clients: its canonical user id (what ACLs, Owner and Initiator
//! elements carry) and display name (the key's name). Internally every owner and grantee is
//! an access key; the canonical id is derived from it, so it never changes and needs no
//! storage, and it does not reveal the access key.

use std::collections::HashMap;
use std::sync::Arc;

use cairn_metadata::ANONYMOUS_OWNER;
use sha2::{Digest, Sha256};

use crate::error::S3Error;
use crate::xml::XmlWriter;
use crate::ApiState;

/// The canonical user id of `access_key`: 64 hex digits, like S3's.
pub fn canonical_id(access_key: &str) -> String {
    if access_key == ANONYMOUS_OWNER {
        return ANONYMOUS.to_string();
    }
    let mut h = Sha256::new();
    h.update(b"cairn canonical user id\0");
    h.update(access_key.as_bytes());
    hex::encode(h.finalize())
}

/// Id and display name of the owner of objects written anonymously.
const ANONYMOUS: &str = "anonymous";

/// The display name of a key: its name, or the access key when it has none.
pub fn display_name(access_key: &str, name: &str) -> String {
    if access_key == ANONYMOUS_OWNER {
        ANONYMOUS.to_string()
    } else if name.is_empty() {
        access_key.to_string()
    } else {
        name.to_string()
    }
}

/// Access keys with their names, looked up through the object service as a request needs them (a handful
/// of point reads per request; the whole key list only to resolve a canonical id).
pub struct Directory<'a> {
    st: &'a Arc<ApiState>,
    names: HashMap<String, String>,
}

impl<'a> Directory<'a> {
    pub fn new(st: &'a Arc<ApiState>) -> Self {
        Directory {
            st,
            names: HashMap::new(),
        }
    }

    /// The display name of `access_key`.
    pub async fn name(&mut self, access_key: &str) -> Result<String, S3Error> {
        if let Some(n) = self.names.get(access_key) {
            return Ok(n.clone());
        }
        let name = match self.st.objects.access_key(access_key).await? {
            Some(rec) => display_name(access_key, &rec.name),
            None => display_name(access_key, ""),
        };
        self.names.insert(access_key.to_string(), name.clone());
        Ok(name)
    }

    /// Writes `<{elem}><ID>…</ID><DisplayName>…</DisplayName></{elem}>` for `access_key`.
    pub async fn write_owner(
        &mut self,
        w: &mut XmlWriter,
        elem: &str,
        access_key: &str,
    ) -> Result<(), S3Error> {
        let name = self.name(access_key).await?;
        w.open(elem);
        w.elem("ID", &canonical_id(access_key));
        w.elem("DisplayName", &name);
        w.close(elem);
        Ok(())
    }

    /// The access key whose canonical user id is `id`.
    pub async fn resolve(&self, id: &str) -> Result<Option<String>, S3Error> {
        let keys = self.st.objects.access_keys().await?;
        Ok(keys
            .into_iter()
            .map(|k| k.access_key)
            .find(|ak| canonical_id(ak) == id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_ids_are_stable_hex_and_distinct() {
        let a = canonical_id("AKIAEXAMPLE00000001");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, canonical_id("AKIAEXAMPLE00000001"));
        assert_ne!(a, canonical_id("AKIAEXAMPLE00000002"));
        assert_eq!(canonical_id(ANONYMOUS_OWNER), "anonymous");
        assert_eq!(display_name("AK", ""), "AK");
        assert_eq!(display_name("AK", "alice"), "alice");
    }
}
