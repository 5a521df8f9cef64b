//! `--config FILE`: any option of `train`, `lr-find`, `sweep` or `compare` read from a TOML or JSON file whose keys
//! are the long option names without dashes (`batch-size` or `batch_size`); the command line wins.
//!
//! It works on the argument list, before the subcommand's struct exists: the command line is parsed once to learn
//! which options it gives (clap's `ValueSource::CommandLine`), and every file value for an option it does *not*
//! give is appended as `--name=value`. The real parse then sees one argument list, so a file value meets exactly
//! the checks, conflicts and defaults of the same option typed by hand, and nothing downstream knows about the file.
//! Each file value is also run through its option's own value parser first, so a wrong type is reported with the
//! key and the file rather than as an anonymous `--name`.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command, CommandFactory};
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The subcommands that take `--config` (those that flatten `RunArgs`).
pub const COMMANDS: [&str; 4] = ["train", "lr-find", "sweep", "compare"];

/// Options a file cannot set: the file itself, and clap's own.
const NOT_IN_FILE: [&str; 3] = ["config", "help", "version"];

/// The argument list the command line was parsed from (the process's own plus the file's values), kept so
/// `--resume` can tell given options from defaults ([`crate::cli::resume::explicit_options`]).
static EFFECTIVE: OnceLock<Vec<OsString>> = OnceLock::new();

/// The arguments of this process as parsed: with `--config`, including the file's values.
pub fn process_args() -> Vec<OsString> {
    EFFECTIVE.get().cloned().unwrap_or_else(|| std::env::args_os().collect())
}

/// The options the file supplied, for a note when the combined argument list fails to parse.
pub struct Applied {
    pub file: String,
    pub flags: Vec<String>,
}

/// `argv` with the values of `--config FILE` appended (unchanged without `--config`), remembered for
/// [`process_args`]. Errors (unreadable or malformed file, unknown key, wrong type) are usage errors (exit 2).
pub fn apply(argv: Vec<OsString>) -> Result<(Vec<OsString>, Option<Applied>)> {
    let (out, applied) = expand(argv)?;
    let _ = EFFECTIVE.set(out.clone());
    Ok((out, applied))
}

fn expand(argv: Vec<OsString>) -> Result<(Vec<OsString>, Option<Applied>)> {
    let mut cmd = super::Cli::command();
    cmd.build();
    // Lenient first pass: the file may supply what the command line alone lacks (`--random` without `--trials`).
    // --help, --version and real syntax errors fall through to the strict parse, which reports them.
    let Ok(m) = cmd.clone().ignore_errors(true).try_get_matches_from(&argv) else { return Ok((argv, None)) };
    let Some((name, sub_m)) = m.subcommand() else { return Ok((argv, None)) };
    if !COMMANDS.contains(&name) {
        return Ok((argv, None));
    }
    let path = sub_m.try_get_one::<std::path::PathBuf>("config").ok().flatten();
    let Some(path) = path.filter(|_| given(sub_m, "config")) else {
        return Ok((argv, None));
    };
    let sub = cmd.find_subcommand(name).expect("the matched subcommand exists");
    let file = path.display().to_string();
    let values = load(path)?;
    let mut argv = argv;
    let mut flags = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    for (key, value) in &values {
        let id = key.trim_start_matches("--").replace('-', "_");
        if let Some((_, other)) = seen.iter().find(|(s, _)| *s == id) {
            return Err(Error::Usage(format!("--config {file}: `{other}` and `{key}` set the same option")));
        }
        seen.push((id.clone(), key));
        let arg = sub
            .get_arguments()
            .find(|a| a.get_id().as_str() == id && a.get_long().is_some() && !NOT_IN_FILE.contains(&id.as_str()))
            .ok_or_else(|| {
                let why = if NOT_IN_FILE.contains(&id.as_str()) {
                    "cannot be set from a config file".to_string()
                } else {
                    format!("is not an option of `wgtrain {name}`")
                };
                Error::Usage(format!("--config {file}: unknown key `{key}`: it {why}"))
            })?;
        // The command line wins: over the same option, and over an option it excludes (`--random` on the command
        // line drops the file's `grid`).
        let overruled = sub.get_arg_conflicts_with(arg).iter().any(|c| given(sub_m, c.get_id().as_str()));
        if given(sub_m, &id) || overruled {
            continue;
        }
        let long = arg.get_long().expect("checked above");
        let bad = |what: String| Error::Usage(format!("--config {file}: `{key}` {what}"));
        if !arg.get_action().takes_values() {
            match value {
                Value::Bool(true) => flags.push(format!("--{long}")),
                Value::Bool(false) => {}
                other => return Err(bad(format!("is a switch: it takes true or false, not {}", kind(other)))),
            }
            continue;
        }
        let text = as_text(arg, value).map_err(bad)?;
        check_value(arg, &text).map_err(|e| bad(format!("= {}: {e}", short(value))))?;
        flags.push(format!("--{long}={text}"));
    }
    argv.extend(flags.iter().map(OsString::from));
    let names = flags.iter().map(|f| f.split('=').next().unwrap_or(f).to_string()).collect();
    Ok((argv, Some(Applied { file, flags: names })))
}

/// Run `text` through the option's own value parser (and possible values), alone: the option's relations to
/// others (`requires`, `conflicts_with`) are checked by the full parse afterwards.
fn check_value(arg: &Arg, text: &str) -> std::result::Result<(), String> {
    // A positional stand-in (clap's long names must be 'static), taking any text, even `-0.5`.
    let mut lone = Arg::new(arg.get_id().clone())
        .value_parser(arg.get_value_parser().clone())
        .allow_hyphen_values(true)
        .required(true);
    if let Some(names) = arg.get_value_names() {
        lone = lone.value_names(names.to_vec());
    }
    Command::new("wgtrain")
        .no_binary_name(true)
        .arg(lone)
        .try_get_matches_from([text])
        .map(|_| ())
        .map_err(|e| message(&e.to_string()))
}

/// Whether `id` was typed on the command line (not a default, not absent).
fn given(m: &ArgMatches, id: &str) -> bool {
    m.try_contains_id(id).unwrap_or(false) && m.value_source(id) == Some(ValueSource::CommandLine)
}

/// The file's top-level table: TOML for `.toml`, JSON for `.json`, otherwise JSON and then TOML.
fn load(path: &Path) -> Result<Map<String, Value>> {
    let shown = path.display();
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::Usage(format!("--config {shown}: cannot read: {e}")))?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let json = |t: &str| serde_json::from_str::<Value>(t).map_err(|e| format!("not valid JSON: {e}"));
    // toml's messages name the line and column and quote the offending line.
    let toml = |t: &str| {
        toml::from_str::<toml::Value>(t)
            .map(toml_to_json)
            .map_err(|e| format!("not valid TOML: {}", e.to_string().trim_end()))
    };
    let value = match ext.as_deref() {
        Some("json") => json(&text),
        Some("toml") => toml(&text),
        _ => json(&text).or_else(|je| toml(&text).map_err(|te| format!("neither JSON nor TOML: {je}; {te}"))),
    }
    .map_err(|e| Error::Usage(format!("--config {shown}: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::Usage(format!(
            "--config {shown}: the file must hold a table of options (`lr = 0.1` / {{\"lr\": 0.1}}), not {}",
            kind(&other)
        ))),
    }
}

/// A TOML value as JSON. TOML's `nan` and `inf` have no JSON number: they become the text `nan`, `inf`, `-inf`,
/// which the option then parses (or refuses, naming itself) exactly as it would on the command line — not a
/// `null` that says nothing about them. Dates and times become their text.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) if f.is_nan() => Value::String("nan".into()),
        toml::Value::Float(f) if f.is_infinite() => Value::String(if f > 0.0 { "inf" } else { "-inf" }.into()),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect()),
    }
}

/// A file value as the option's command-line text. Tables, and lists holding tables or lists, become JSON text
/// (what `--schedule`, `--model`, `--param-groups`, `--grid` and `--random` take); a list of plain values of an
/// option that does not take JSON becomes `a,b` (`--betas 0.9,0.999`).
fn as_text(arg: &Arg, value: &Value) -> std::result::Result<String, String> {
    let takes_json = arg.get_value_names().is_some_and(|n| n.iter().any(|n| n.contains("JSON")));
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(_) => Err("takes a value, not true or false".into()),
        Value::Null => Err("is null: leave the key out to use the default".into()),
        Value::Object(_) => Ok(value.to_string()),
        Value::Array(items) if takes_json || items.iter().any(|v| v.is_object() || v.is_array()) => {
            Ok(value.to_string())
        }
        Value::Array(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(format!("holds {} in its list; expected numbers or strings", kind(other))),
                })
                .collect::<std::result::Result<_, _>>()?;
            Ok(parts.join(","))
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    }
}

/// A value for an error message, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}…", s.chars().take(60).collect::<String>()) } else { s }
}

/// clap's message on one line, without its `error: ` prefix and the usage/help lines (possible values and tips
/// are kept).
fn message(s: &str) -> String {
    let keep = |l: &&str| !l.trim().is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information");
    let lines: Vec<&str> = s.lines().filter(keep).map(str::trim).collect();
    lines.join("; ").trim_start_matches("error: ").to_string()
}
