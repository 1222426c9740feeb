//! The lifecycle rule model: what a bucket's configuration says, validated as S3 validates it,
//! stored as JSON in the bucket's `Lifecycle` configuration, and which objects a rule names.
//!
//! A rule keeps the shape it was written in (a rule-level `Prefix` or a `Filter`, the
//! predicates given) so that GetBucketLifecycleConfiguration answers with what was put. A
//! filter's predicates — its prefix, tag, `And` block and sizes — all have to hold (S3 allows
//! several only inside `And`; Cairn accepts them side by side and ANDs them too).

use serde::{Deserialize, Serialize};

use crate::LifecycleError;

/// Most rules a configuration may have (as S3).
pub const MAX_RULES: usize = 1000;
/// Longest rule id (as S3).
pub const MAX_ID_LEN: usize = 255;

/// A bucket's lifecycle configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    pub rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: String,
    /// `Enabled` (true) or `Disabled`: a disabled rule is kept and does nothing.
    pub enabled: bool,
    /// The legacy rule-level `Prefix` (exclusive with `filter`).
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub filter: Option<Filter>,
    #[serde(default)]
    pub expiration: Option<Expiration>,
    #[serde(default)]
    pub noncurrent_expiration: Option<NoncurrentExpiration>,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    #[serde(default)]
    pub abort_incomplete_days: Option<u32>,
}

/// A rule's `Filter`: every predicate given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub tag: Option<(String, String)>,
    #[serde(default)]
    pub size_greater_than: Option<u64>,
    #[serde(default)]
    pub size_less_than: Option<u64>,
    #[serde(default)]
    pub and: Option<AndFilter>,
}

/// A filter's `And` block.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AndFilter {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub tags: Vec<(String, String)>,
    #[serde(default)]
    pub size_greater_than: Option<u64>,
    #[serde(default)]
    pub size_less_than: Option<u64>,
}

/// `Expiration`: exactly one of its three forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiration {
    /// The current version expires this many days after it was written.
    Days(u32),
    /// The current version expires at this instant (ms; midnight UTC).
    Date(i64),
    /// `ExpiredObjectDeleteMarker`: a delete marker that is its key's only version goes
    /// (`false` is kept as written and does nothing).
    DeleteMarker(bool),
}

/// `NoncurrentVersionExpiration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoncurrentExpiration {
    /// Days after a version became noncurrent.
    pub days: u32,
    /// The newest noncurrent versions kept whatever their age.
    #[serde(default)]
    pub newer_noncurrent_versions: Option<u32>,
}

/// What a rule is asked about an object version.
pub struct Candidate<'a> {
    pub key: &'a str,
    pub size: u64,
    pub tags: &'a std::collections::BTreeMap<String, String>,
}

impl Filter {
    fn matches(&self, c: &Candidate<'_>) -> bool {
        let tag_ok = |(k, v): &(String, String)| c.tags.get(k) == Some(v);
        let size_ok = |gt: Option<u64>, lt: Option<u64>| {
            gt.is_none_or(|g| c.size > g) && lt.is_none_or(|l| c.size < l)
        };
        self.prefix.as_deref().is_none_or(|p| c.key.starts_with(p))
            && self.tag.as_ref().is_none_or(tag_ok)
            && size_ok(self.size_greater_than, self.size_less_than)
            && self.and.as_ref().is_none_or(|a| {
                a.prefix.as_deref().is_none_or(|p| c.key.starts_with(p))
                    && a.tags.iter().all(tag_ok)
                    && size_ok(a.size_greater_than, a.size_less_than)
            })
    }

    fn has_tags(&self) -> bool {
        self.tag.is_some() || self.and.as_ref().is_some_and(|a| !a.tags.is_empty())
    }

    fn has_size(&self) -> bool {
        self.size_greater_than.is_some()
            || self.size_less_than.is_some()
            || self
                .and
                .as_ref()
                .is_some_and(|a| a.size_greater_than.is_some() || a.size_less_than.is_some())
    }

    /// The prefixes the filter names (every key it matches starts with each).
    fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefix
            .as_deref()
            .into_iter()
            .chain(self.and.as_ref().and_then(|a| a.prefix.as_deref()))
    }
}

impl Rule {
    /// Whether the rule names this object version (its status aside).
    pub fn matches(&self, c: &Candidate<'_>) -> bool {
        self.prefix.as_deref().is_none_or(|p| c.key.starts_with(p))
            && self.filter.as_ref().is_none_or(|f| f.matches(c))
    }

    /// Whether the rule names an incomplete multipart upload of `key`: by prefix only (an
    /// upload has no tags or size yet), so a rule with tag or size predicates names none.
    pub fn matches_upload(&self, key: &str) -> bool {
        let f = self.filter.as_ref();
        !f.is_some_and(|f| f.has_tags() || f.has_size())
            && self.prefix.as_deref().is_none_or(|p| key.starts_with(p))
            && f.is_none_or(|f| f.prefixes().all(|p| key.starts_with(p)))
    }

    /// Whether the rule could name some key starting with `prefix` (for listing less).
    pub fn longest_prefix(&self) -> &str {
        self.prefix
            .as_deref()
            .into_iter()
            .chain(self.filter.iter().flat_map(|f| f.prefixes()))
            .max_by_key(|p| p.len())
            .unwrap_or("")
    }
}

impl LifecycleConfig {
    /// Checks the configuration as S3 does, giving rules without an id a fresh one.
    pub fn validate(
        mut self,
        fresh_id: &mut dyn FnMut() -> String,
    ) -> Result<Self, LifecycleError> {
        if self.rules.is_empty() || self.rules.len() > MAX_RULES {
            return Err(LifecycleError::MalformedXml(format!(
                "a lifecycle configuration has 1 to {MAX_RULES} rules"
            )));
        }
        for r in &mut self.rules {
            if r.id.is_empty() {
                r.id = fresh_id();
            }
            r.check()?;
        }
        let mut ids: Vec<&str> = self.rules.iter().map(|r| r.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(LifecycleError::InvalidArgument(format!(
                "Rule ID must be unique. Found same ID for more than one rule: {}",
                w[0]
            )));
        }
        Ok(self)
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain structs serialise")
    }

    pub fn decode(raw: &[u8]) -> Result<Self, LifecycleError> {
        serde_json::from_slice(raw)
            .map_err(|e| LifecycleError::Stored(format!("stored lifecycle configuration: {e}")))
    }
}

impl Rule {
    fn check(&self) -> Result<(), LifecycleError> {
        let invalid = |m: &str| Err(LifecycleError::InvalidArgument(m.to_string()));
        if self.id.len() > MAX_ID_LEN {
            return invalid("ID length should not exceed allowed limit of 255");
        }
        if self.prefix.is_some() && self.filter.is_some() {
            return Err(LifecycleError::MalformedXml(
                "a rule has a Prefix or a Filter, not both".into(),
            ));
        }
        if self.expiration.is_none()
            && self.noncurrent_expiration.is_none()
            && self.abort_incomplete_days.is_none()
        {
            return Err(LifecycleError::InvalidRequest(
                "At least one action needs to be specified in a rule".into(),
            ));
        }
        match self.expiration {
            Some(Expiration::Days(0)) => {
                return invalid("'Days' for Expiration action must be a positive integer")
            }
            Some(Expiration::Date(ms)) if ms.rem_euclid(86_400_000) != 0 => {
                return invalid("'Date' must be at midnight GMT")
            }
            Some(Expiration::DeleteMarker(true))
                if self.filter.as_ref().is_some_and(Filter::has_tags) =>
            {
                return Err(LifecycleError::InvalidRequest(
                    "ExpiredObjectDeleteMarker cannot be specified with tags".into(),
                ))
            }
            _ => {}
        }
        if let Some(n) = self.noncurrent_expiration {
            if n.days == 0 {
                return invalid("'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer");
            }
            if n.newer_noncurrent_versions
                .is_some_and(|v| v == 0 || v > 100)
            {
                return invalid("'NewerNoncurrentVersions' must be between 1 and 100");
            }
        }
        if self.abort_incomplete_days == Some(0) {
            return invalid("'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer");
        }
        if self.abort_incomplete_days.is_some()
            && self
                .filter
                .as_ref()
                .is_some_and(|f| f.has_tags() || f.has_size())
        {
            return Err(LifecycleError::InvalidRequest(
                "AbortIncompleteMultipartUpload cannot be specified with tags or object size"
                    .into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rule(prefix: Option<&str>, filter: Option<Filter>) -> Rule {
        Rule {
            id: "r".into(),
            enabled: true,
            prefix: prefix.map(str::to_string),
            filter,
            expiration: Some(Expiration::Days(1)),
            noncurrent_expiration: None,
            abort_incomplete_days: None,
        }
    }

    #[test]
    fn filters_and_all_predicates() {
        let tags: BTreeMap<String, String> =
            [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let c = |key, size| Candidate {
            key,
            size,
            tags: &tags,
        };
        assert!(rule(None, None).matches(&c("x", 1)));
        assert!(rule(Some("lo"), None).matches(&c("logs/x", 1)));
        assert!(!rule(Some("lo"), None).matches(&c("x", 1)));
        let f = Filter {
            prefix: Some("logs/".into()),
            tag: Some(("a".into(), "1".into())),
            size_greater_than: Some(10),
            ..Filter::default()
        };
        let r = rule(None, Some(f));
        assert!(r.matches(&c("logs/x", 11)));
        assert!(!r.matches(&c("logs/x", 10)), "strictly greater");
        assert!(!r.matches(&c("other", 11)));
        let and = Filter {
            and: Some(AndFilter {
                tags: vec![("a".into(), "1".into()), ("b".into(), "3".into())],
                ..AndFilter::default()
            }),
            ..Filter::default()
        };
        assert!(
            !rule(None, Some(and)).matches(&c("x", 1)),
            "And needs every tag"
        );
        assert!(!rule(
            None,
            Some(Filter {
                tag: Some(("a".into(), "1".into())),
                ..Filter::default()
            })
        )
        .matches_upload("x"));
        assert!(rule(Some("u/"), None).matches_upload("u/1"));
    }

    #[test]
    fn validation() {
        let mut n = 0;
        let mut fresh = || {
            n += 1;
            format!("gen{n}")
        };
        let ok = LifecycleConfig {
            rules: vec![
                rule(None, None),
                Rule {
                    id: String::new(),
                    ..rule(None, None)
                },
            ],
        };
        let v = ok.validate(&mut fresh).unwrap();
        assert_eq!(v.rules[1].id, "gen1");
        let dup = LifecycleConfig {
            rules: vec![rule(None, None), rule(None, None)],
        };
        assert!(matches!(
            dup.validate(&mut fresh),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let long = LifecycleConfig {
            rules: vec![Rule {
                id: "a".repeat(256),
                ..rule(None, None)
            }],
        };
        assert!(matches!(
            long.validate(&mut fresh),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let days0 = LifecycleConfig {
            rules: vec![Rule {
                expiration: Some(Expiration::Days(0)),
                ..rule(None, None)
            }],
        };
        assert!(matches!(
            days0.validate(&mut fresh),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let noon = LifecycleConfig {
            rules: vec![Rule {
                expiration: Some(Expiration::Date(43_200_000)),
                ..rule(None, None)
            }],
        };
        assert!(matches!(
            noon.validate(&mut fresh),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let both = LifecycleConfig {
            rules: vec![rule(Some("a"), Some(Filter::default()))],
        };
        assert!(matches!(
            both.validate(&mut fresh),
            Err(LifecycleError::MalformedXml(_))
        ));
        let none = LifecycleConfig {
            rules: vec![Rule {
                expiration: None,
                ..rule(None, None)
            }],
        };
        assert!(matches!(
            none.validate(&mut fresh),
            Err(LifecycleError::InvalidRequest(_))
        ));
        assert!(matches!(
            LifecycleConfig { rules: vec![] }.validate(&mut fresh),
            Err(LifecycleError::MalformedXml(_))
        ));
    }
}
