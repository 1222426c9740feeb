//! `cairn server --config FILE`: a TOML file of server settings, turned into flags placed
//! before those of the command line (which therefore win). Keys are the flag names without
//! the dashes (`node-id = 2`, `join = "node1:9002"`); arrays repeat the flag
//! (`data-dir = ["/disk1", "/disk2"]`); `true` gives a switch, `false` leaves it out.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{bail, Context};

/// The command line with `--config FILE` (or `CAIRN_CONFIG`) of `cairn server` expanded.
pub fn expand_args(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
    let Some(pos) = args.iter().position(|a| a == "server") else {
        return Ok(args);
    };
    let mut file = std::env::var_os("CAIRN_CONFIG").filter(|v| !v.is_empty());
    let mut i = pos + 1;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--config" {
            file = args.get(i + 1).cloned();
            i += 1;
        } else if let Some(v) = a.strip_prefix("--config=") {
            file = Some(OsString::from(v));
        }
        i += 1;
    }
    let Some(file) = file else {
        return Ok(args);
    };
    let flags = flags_from_file(Path::new(&file))?;
    let mut out: Vec<OsString> = args[..=pos].to_vec();
    out.extend(flags.into_iter().map(OsString::from));
    out.extend(args[pos + 1..].iter().cloned());
    Ok(out)
}

/// The flags a config file stands for.
pub fn flags_from_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    flags_from_toml(&text).with_context(|| format!("in the config file {}", path.display()))
}

fn flags_from_toml(text: &str) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    let mut out = Vec::new();
    for (key, value) in table {
        if key == "config" {
            bail!("a config file cannot name another config file");
        }
        let flag = format!("--{key}");
        let mut push = |v: &toml::Value| -> anyhow::Result<()> {
            match v {
                toml::Value::String(s) => out.push(format!("{flag}={s}")),
                toml::Value::Integer(n) => out.push(format!("{flag}={n}")),
                toml::Value::Float(f) => out.push(format!("{flag}={f}")),
                toml::Value::Boolean(true) => out.push(flag.clone()),
                toml::Value::Boolean(false) => {}
                other => bail!("{key}: unsupported value {other}"),
            }
            Ok(())
        };
        match &value {
            toml::Value::Array(items) => {
                for item in items {
                    push(item)?;
                }
            }
            v => push(v)?,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_becomes_flags_before_the_command_line() {
        let flags = flags_from_toml(
            "node-id = 2\nroles = \"meta,data\"\ndata-dir = [\"/a\", \"/b\"]\nno-auto-repair = true\nmeta-timeout = 2.5\n",
        )
        .unwrap();
        assert!(flags.contains(&"--node-id=2".to_string()), "{flags:?}");
        assert!(flags.contains(&"--roles=meta,data".to_string()));
        assert!(flags.contains(&"--data-dir=/a".to_string()));
        assert!(flags.contains(&"--data-dir=/b".to_string()));
        assert!(flags.contains(&"--no-auto-repair".to_string()));
        assert!(flags.contains(&"--meta-timeout=2.5".to_string()));
        assert!(flags_from_toml("config = \"x\"").is_err());
        assert!(flags_from_toml("not toml [").is_err());
    }

    #[test]
    fn command_line_flags_follow_the_file_so_they_win() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "node-id = 2\n").unwrap();
        let args: Vec<OsString> = [
            "cairn",
            "server",
            "--config",
            file.to_str().unwrap(),
            "--node-id",
            "3",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let out = expand_args(args).unwrap();
        let s: Vec<String> = out
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let file_pos = s.iter().position(|a| a == "--node-id=2").unwrap();
        let cli_pos = s.iter().position(|a| a == "3").unwrap();
        assert!(file_pos < cli_pos, "{s:?}");
    }
}
