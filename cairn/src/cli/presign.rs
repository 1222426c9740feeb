//! `cairn presign-post`: signs a browser upload form (POST Object) with an access key and
//! prints it, as JSON (the URL and the fields a page puts in its form) or as an HTML page
//! with the form. Nothing is sent to the server: the form is checked when a browser posts
//! it. The signing is `cairn_api::post_form`, what the server's checks are tested against.

use anyhow::{bail, Context};
use cairn_api::post_form::{sign_post_form, PostFormSpec};
use time::{Duration, OffsetDateTime};

#[derive(clap::Args, Debug, Clone)]
pub struct PresignPostArgs {
    /// The bucket the form uploads into.
    pub bucket: String,
    /// The object's key; `${filename}` in it is replaced by the name of the browser's file
    /// (then any key starting with what precedes `${filename}` is allowed).
    #[arg(long)]
    pub key: String,
    /// How long the form may be used: `90s`, `15m`, `1h`, `7d` or plain seconds.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub expires: Duration,
    /// The sizes the file may have, in bytes: `MIN,MAX`.
    #[arg(long, value_name = "MIN,MAX", value_parser = parse_range)]
    pub content_length_range: Option<(u64, u64)>,
    /// Where the browser is sent after an upload (303 See Other, with `bucket`, `key` and
    /// `etag` added to the URL's query).
    #[arg(long, value_name = "URL")]
    pub redirect: Option<String>,
    /// Without a redirect: 200 (empty), 201 (an XML document naming the object) or 204
    /// (the default) after an upload.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["200", "201", "204"]))]
    pub success_action_status: Option<String>,
    /// A field sent with exactly this value: `NAME=VALUE` (`acl=public-read`,
    /// `Content-Type=image/png`, `x-amz-meta-album=summer`, …); repeatable.
    #[arg(long = "field", value_name = "NAME=VALUE", value_parser = parse_pair)]
    pub fields: Vec<(String, String)>,
    /// A field the page fills in, whose value must start with PREFIX (empty: any value):
    /// `NAME=PREFIX`, e.g. `Content-Type=image/`; repeatable.
    #[arg(long = "starts-with", value_name = "NAME=PREFIX", value_parser = parse_pair)]
    pub starts_with: Vec<(String, String)>,
    /// The S3 endpoint the browser posts to.
    #[arg(long, env = "CAIRN_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,
    /// Access key that signs (else env CAIRN_ACCESS_KEY, AWS_ACCESS_KEY_ID or
    /// CAIRN_ROOT_ACCESS_KEY).
    #[arg(long, env = "CAIRN_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// Its secret (else env CAIRN_SECRET_KEY, AWS_SECRET_ACCESS_KEY or
    /// CAIRN_ROOT_SECRET_KEY).
    #[arg(long, env = "CAIRN_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Print an HTML page with the form (a file input and a submit button) instead of JSON.
    #[arg(long)]
    pub html: bool,
}

/// `90s`, `15m`, `1h`, `7d` or plain seconds; more than zero.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, "s"),
    };
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 90s, 15m, 1h or 7d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a duration such as 90s, 15m, 1h or 7d"))?;
    if secs <= 0 {
        return Err("the form must be valid for some time".into());
    }
    Ok(Duration::seconds(secs))
}

/// `MIN,MAX` with MIN <= MAX.
fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{s:?} is not MIN,MAX (two byte counts, MIN <= MAX)");
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let (min, max) = (
        a.trim().parse::<u64>().map_err(|_| bad())?,
        b.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if min > max {
        return Err(bad());
    }
    Ok((min, max))
}

/// `NAME=VALUE` (the value may be empty or contain `=`).
fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.trim().is_empty() => Ok((n.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

impl PresignPostArgs {
    /// The key pair: the arguments (or CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY), else
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else the root key's variables; a pair is
    /// taken whole from one place.
    fn credentials(&self) -> anyhow::Result<(String, String)> {
        if let (Some(a), Some(s)) = (&self.access_key, &self.secret_key) {
            return Ok((a.clone(), s.clone()));
        }
        let env = |a: &str, s: &str| Some((std::env::var(a).ok()?, std::env::var(s).ok()?));
        env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            .or_else(|| env("CAIRN_ROOT_ACCESS_KEY", "CAIRN_ROOT_SECRET_KEY"))
            .context(
                "no key to sign with: give --access-key and --secret-key (or set \
                 CAIRN_ACCESS_KEY and CAIRN_SECRET_KEY)",
            )
    }
}

pub fn run(args: PresignPostArgs) -> anyhow::Result<()> {
    if args.key.is_empty() {
        bail!("--key must not be empty");
    }
    let (access_key, secret) = args.credentials()?;
    let spec = PostFormSpec {
        endpoint: args.endpoint.clone(),
        bucket: args.bucket.clone(),
        key: args.key.clone(),
        expires_in: args.expires,
        content_length_range: args.content_length_range,
        redirect: args.redirect.clone(),
        success_action_status: args
            .success_action_status
            .as_deref()
            .and_then(|s| s.parse().ok()),
        fields: args.fields.clone(),
        starts_with: args.starts_with.clone(),
        region: args.region.clone(),
    };
    let form = sign_post_form(&spec, &access_key, &secret, OffsetDateTime::now_utc());
    if args.html {
        print!("{}", form.to_html());
    } else {
        println!("{}", serde_json::to_string_pretty(&form.to_json())?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(parse_duration("90s"), Ok(Duration::seconds(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::minutes(15)));
        assert_eq!(parse_duration("1h"), Ok(Duration::hours(1)));
        assert_eq!(parse_duration("7d"), Ok(Duration::days(7)));
        assert_eq!(parse_duration("600"), Ok(Duration::seconds(600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_range("0,10485760"), Ok((0, 10_485_760)));
        assert!(parse_range("10,1").is_err());
        assert!(parse_range("-1,5").is_err());
        assert_eq!(
            parse_pair("x-amz-meta-a=b=c"),
            Ok(("x-amz-meta-a".into(), "b=c".into()))
        );
        assert!(parse_pair("=v").is_err());
        assert!(parse_pair("novalue").is_err());
    }
}
