//! `cairn key`: create and list the access keys of a running server, through its admin API
//! (`POST /admin/keys`, `GET /admin/keys`). Each key is also an S3 user: besides the key
//! pair it has the canonical user id that ACLs and Owner elements name, and a display name
//! (its name).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use cairn_api::identity::{canonical_id, display_name};
use serde::Deserialize;

use crate::cli::admin::{cluster_secret, request};

#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    /// Address of the server's admin API.
    #[arg(long, default_value = "127.0.0.1:9001", env = "CAIRN_ADMIN_ADDR")]
    pub admin: SocketAddr,
    /// Data directory of the server (its cluster secret authenticates admin calls; or set
    /// CAIRN_CLUSTER_SECRET).
    #[arg(long, default_value = "./cairn-data", env = "CAIRN_DATA")]
    pub data: PathBuf,
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum KeyAction {
    /// Create an access key for NAME; prints it with its secret (shown only this once),
    /// canonical user id and display name.
    Create {
        /// The key's name (its display name in ACLs and listings).
        name: String,
        /// Use this access key instead of a generated one.
        #[arg(long)]
        access_key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret_key: Option<String>,
    },
    /// List the access keys (no secrets) with their canonical user ids and display names.
    List,
}

#[derive(Deserialize)]
struct Created {
    access_key: String,
    secret_key: String,
    name: String,
}

#[derive(Deserialize)]
struct Listed {
    access_key: String,
    name: String,
}

pub fn run(args: KeyArgs) -> anyhow::Result<()> {
    let secret = cluster_secret(&args.data)?;
    match args.action {
        KeyAction::Create {
            name,
            access_key,
            secret_key,
        } => {
            let body = serde_json::json!({
                "name": name,
                "access_key": access_key,
                "secret_key": secret_key,
            })
            .to_string();
            let text = call(args.admin, "POST", &secret, &body)?;
            let k: Created = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", created_text(&k));
        }
        KeyAction::List => {
            let text = call(args.admin, "GET", &secret, "")?;
            let keys: Vec<Listed> = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", list_text(&keys));
        }
    }
    Ok(())
}

fn call(admin: SocketAddr, method: &str, secret: &str, body: &str) -> anyhow::Result<String> {
    let (status, text) = request(admin, method, "/admin/keys", secret, body)?;
    if !(200..300).contains(&status) {
        bail!("the server answered {status}: {}", text.trim());
    }
    Ok(text)
}

fn created_text(k: &Created) -> String {
    format!(
        "access key:        {}\nsecret key:        {}\ncanonical user id: {}\ndisplay name:      {}\n",
        k.access_key,
        k.secret_key,
        canonical_id(&k.access_key),
        display_name(&k.access_key, &k.name)
    )
}

fn list_text(keys: &[Listed]) -> String {
    let mut out = String::from("ACCESS KEY\tCANONICAL USER ID\tDISPLAY NAME\n");
    for k in keys {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            k.access_key,
            canonical_id(&k.access_key),
            display_name(&k.access_key, &k.name)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_the_user_of_a_key() {
        let k = Created {
            access_key: "AKEXAMPLE0000001".into(),
            secret_key: "s3cr3t-s3cr3t-s3cr3t".into(),
            name: "alice".into(),
        };
        let text = created_text(&k);
        assert!(text.contains("access key:        AKEXAMPLE0000001\n"));
        assert!(text.contains("secret key:        s3cr3t-s3cr3t-s3cr3t\n"));
        assert!(text.contains(&format!(
            "canonical user id: {}\n",
            canonical_id("AKEXAMPLE0000001")
        )));
        assert!(text.contains("display name:      alice\n"));
        let list = list_text(&[Listed {
            access_key: "AKEXAMPLE0000001".into(),
            name: String::new(),
        }]);
        assert!(list.ends_with("\tAKEXAMPLE0000001\n"), "{list}");
    }
}
