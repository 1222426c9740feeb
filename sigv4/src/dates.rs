//! Time rules both signature versions share: how far a request's clock may be from ours,
//! how long a presigned URL may live, and the two date formats requests carry (`X-Amz-Date`'s
//! ISO 8601 basic form and the HTTP `Date` header's IMF-fixdate).

use time::{Duration, OffsetDateTime, PrimitiveDateTime};

/// Largest clock difference accepted for header-signed requests.
pub const MAX_SKEW: Duration = Duration::minutes(15);
/// Largest `X-Amz-Expires` accepted for presigned URLs (one week); also how far after
/// `now` a SigV2 query `Expires` may be.
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

pub(crate) fn parse_amz_date(value: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(value, fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

pub(crate) fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let fmt = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(value.trim(), fmt)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}
