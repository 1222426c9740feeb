//! `cairn key`: create and list the access keys of a running server, through its admin API
//! (`POST /admin/keys`, `GET /admin/keys`). Each key is also an S3 user: besides the key
//! pair it has the canonical user id that ACLs and Owner elements name, and a display name
//! (its name).

use anyhow::{bail, Context};
use cairn_api::identity::{canonical_id, display_name};
use serde::Deserialize;

use super::client::Connection;

#[derive(clap::Args, Debug, Clone)]
pub struct KeyArgs {
    #[command(flatten)]
    pub conn: Connection,
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
            let text = call(&args.conn, "POST", &body)?;
            let k: Created = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", created_text(&k));
        }
        KeyAction::List => {
            let text = call(&args.conn, "GET", "")?;
            let keys: Vec<Listed> = serde_json::from_str(&text)
                .with_context(|| format!("unexpected answer from the admin API: {text}"))?;
            print!("{}", list_text(&keys));
        }
    }
    Ok(())
}

fn call(conn: &Connection, method: &str, body: &str) -> anyhow::Result<String> {
    let reply = conn.call(method, "/admin/keys", body)?;
    if !reply.ok() {
        bail!(
            "the server answered {}: {}",
            reply.status,
            reply.body.trim()
        );
    }
    Ok(reply.body)
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
