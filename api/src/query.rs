//! Decoded query parameters of a request (a leaf module: the router, the operation table and
//! the handlers all read them).

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode};

/// Decoded query parameters (a parameter given without `=` has an empty value).
#[derive(Debug, Default)]
pub struct Query(BTreeMap<String, String>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, S3Error> {
        let mut map = BTreeMap::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            map.insert(decode(k)?, decode(v)?);
        }
        Ok(Query(map))
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.contains_key(k)
    }
}

fn decode(s: &str) -> Result<String, S3Error> {
    let s = s.replace('+', " ");
    percent_decode_str(&s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| S3Error::new(S3ErrorCode::InvalidArgument, "query is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_query() {
        let q = Query::parse(Some("list-type=2&prefix=a%2Fb+c&delimiter=%2F&location")).unwrap();
        assert_eq!(q.get("prefix"), Some("a/b c"));
        assert_eq!(q.get("delimiter"), Some("/"));
        assert!(q.has("location"));
    }
}
