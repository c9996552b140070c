//! `dask.config` as far as a lookup of a few keys needs it, read as dask reads it, without Python.
//!
//! Every rule below is dask's (`dask/config.py`):
//!
//! - Files (`_get_paths`, `collect_yaml`): the paths are `DASK_ROOT_CONFIG` (else `/etc/dask`),
//!   `~/.config/dask` and `DASK_CONFIG` when set, later ones winning; a path listed twice keeps
//!   its last place. A directory contributes its `*.json`, `*.yaml` and `*.yml` files (extension
//!   in any case) in name order, later files winning; a path that is a file is read itself. A
//!   file that cannot be read is skipped; a malformed one, or one whose top level is not a
//!   mapping, is an error. An empty file is no config.
//! - The environment wins over every file (`collect_env`): `DASK_COILED__TOKEN` is key
//!   `coiled.token` (`DASK_` dropped, lower-cased, `__` nesting), its value read by
//!   `interpret_value`: a Python literal (`'x'` is `x`, `None` nothing, `True` and numbers are
//!   not text), else `none`/`null`/`true`/`false` in any case, else the text as it is.
//! - Merging (`collect`, `update`): mappings merge key by key and a leaf comes from the highest
//!   source that has it, a `null` included. So a lookup walks the sources from the highest down
//!   and takes the first that has the whole key; a source where a step of the key is not a
//!   mapping does not have it. A key matches with `-` and `_` taken as equal (`canonical_name`).
//!
//! Left out, because they need Python: the directories `{sys.prefix}/etc/dask` and
//! `{site.PREFIXES}/etc/dask` of the interpreter dask runs in (between `/etc/dask` and
//! `~/.config/dask`), and `DASK_INTERNAL_INHERIT_CONFIG` (a config a parent dask process passes
//! on). Of Python's literals only plain quoted strings without escapes and decimal numbers are
//! recognised: any other quoted value is an error (rather than a guess). Only the upper-case
//! spelling of a variable is read, where dask lower-cases any `DASK_` name.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::prefect::settings::{Env, home_dir};

/// The sources of a dask config, highest priority first, and the paths dask would look at.
#[derive(Debug)]
pub struct DaskConfig {
    sources: Vec<(Origin, Value)>,
    paths: Vec<PathBuf>,
}

/// Where a value of a [`DaskConfig`] was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// An environment variable, e.g. `DASK_COILED__TOKEN`.
    Variable(String),
    /// A YAML or JSON file.
    File(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Variable(name) => f.write_str(name),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl DaskConfig {
    /// Reads every config file and the variables of `keys` (dotted, e.g. `coiled.token`); a
    /// variable of another key is not read, as an [`Env`] cannot list its variables.
    pub fn load(env: &dyn Env, keys: &[&str]) -> Result<Self> {
        let mut sources = Vec::new();
        for key in keys {
            let name = variable_name(key);
            let Some(text) = env.var(&name) else { continue };
            let value = interpret(&text).ok_or_else(|| {
                Error::usage(name.as_str(), "a quoted value that pushpool cannot read without Python (an escape, a prefix or several strings)")
                    .fix(format!("set {name} to the value alone, without quotes"))
            })?;
            let nested = key.rsplit('.').fold(value, |inner, part| Value::Object([(part.to_owned(), inner)].into_iter().collect()));
            sources.push((Origin::Variable(name), nested));
        }
        let paths = config_paths(env);
        let mut files = Vec::new();
        for file in paths.iter().flat_map(|path| files_at(path)) {
            if let Some(config) = read_file(&file)? {
                files.push((Origin::File(file), config));
            }
        }
        sources.extend(files.into_iter().rev());
        Ok(Self { sources, paths })
    }

    /// The value of a dotted key and where it came from, as `dask.config.get` would return it
    /// (a `null` included); `None` when no source has the key.
    pub fn get(&self, key: &str) -> Option<(&Value, &Origin)> {
        self.sources.iter().find_map(|(origin, config)| Some((key.split('.').try_fold(config, step)?, origin)))
    }

    /// The paths dask reads files from, lowest priority first, for errors that say where
    /// pushpool looked.
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// One step down a key: the mapping's entry spelled as given, else with `-` and `_` swapped.
fn step<'a>(value: &'a Value, part: &str) -> Option<&'a Value> {
    let mapping = value.as_object()?;
    let other = if part.contains('_') { part.replace('_', "-") } else { part.replace('-', "_") };
    mapping.get(part).or_else(|| mapping.get(&other))
}

/// The variable dask maps to a dotted key: `coiled.token` is `DASK_COILED__TOKEN`.
pub fn variable_name(key: &str) -> String {
    format!("DASK_{}", key.replace('.', "__").replace('-', "_").to_uppercase())
}

/// `DASK_ROOT_CONFIG` (else `/etc/dask`), `~/.config/dask`, `DASK_CONFIG`: each path once, at
/// its last place.
fn config_paths(env: &dyn Env) -> Vec<PathBuf> {
    let root = env.var("DASK_ROOT_CONFIG").map_or_else(|| PathBuf::from("/etc/dask"), PathBuf::from);
    let user = home_dir(env).map(|home| home.join(".config").join("dask"));
    let listed: Vec<PathBuf> = std::iter::once(root).chain(user).chain(env.var("DASK_CONFIG").map(PathBuf::from)).collect();
    let mut paths: Vec<PathBuf> = Vec::new();
    for path in listed.into_iter().rev() {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths.reverse();
    paths
}

/// The config files at `path`: a directory's YAML and JSON files in name order, or the path
/// itself when it is a file.
fn files_at(path: &Path) -> Vec<PathBuf> {
    if !path.is_dir() {
        return if path.exists() { vec![path.to_owned()] } else { Vec::new() };
    }
    let is_config = |file: &Path| file.extension().is_some_and(|e| ["json", "yaml", "yml"].contains(&e.to_ascii_lowercase().to_str().unwrap_or("")));
    let Ok(entries) = std::fs::read_dir(path) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).filter(|file| is_config(file)).collect();
    files.sort();
    files
}

/// One config file: `None` when it cannot be read or is empty, an error when it is not YAML or
/// its top level is not a mapping.
fn read_file(path: &Path) -> Result<Option<Value>> {
    let Ok(bytes) = std::fs::read(path) else { return Ok(None) };
    let what = || format!("dask config {}", path.display());
    let fix = "fix the file by hand (dask refuses it too), or move it out of dask's config directories";
    let text = String::from_utf8(bytes).map_err(|_| Error::usage(what(), "not UTF-8 text").fix(fix))?;
    let options = serde_saphyr::options! { duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins, with_snippet: false };
    let config: Value = serde_saphyr::from_str_with_options(&text, options).map_err(|e| {
        // The position only: the parser's message may quote the line, and the line may hold a token.
        let at = e.location().map(|l| format!(" at line {}, column {}", l.line(), l.column())).unwrap_or_default();
        Error::usage(what(), format!("not valid YAML{at}")).fix(fix)
    })?;
    match config {
        Value::Null => Ok(None),
        Value::Object(_) => Ok(Some(config)),
        other => Err(Error::usage(what(), format!("its top level is {}, where dask needs a mapping", kind(&other))).fix(fix)),
    }
}

/// What a value is, for errors that must not show it.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A variable's value as dask reads it (see the module docs); `None` for a quoted literal that
/// pushpool does not read.
fn interpret(text: &str) -> Option<Value> {
    let literal = text.trim_start_matches([' ', '\t']).trim_end();
    if let Some(quote) = literal.chars().next().filter(|c| matches!(c, '\'' | '"')) {
        let inner = literal.strip_prefix(quote)?.strip_suffix(quote)?;
        return (!inner.contains([quote, '\\'])).then(|| Value::String(inner.to_owned()));
    }
    let decimal = literal.contains(|c: char| c.is_ascii_digit()) && literal.chars().all(|c| c.is_ascii_digit() || "+-._eE".contains(c));
    if let Some(number) = decimal.then(|| literal.replace('_', "").parse::<f64>().ok()).flatten() {
        return serde_json::Number::from_f64(number).map(Value::Number);
    }
    Some(match (literal, text.to_lowercase().as_str()) {
        ("None", _) | (_, "none" | "null") => Value::Null,
        ("True", _) | (_, "true") => Value::Bool(true),
        ("False", _) | (_, "false") => Value::Bool(false),
        _ => Value::String(text.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::prefect::settings::MapEnv;

    /// A home, a root config directory and a `DASK_CONFIG` directory, all empty.
    struct Dirs {
        home: tempfile::TempDir,
        root: tempfile::TempDir,
        custom: tempfile::TempDir,
    }

    impl Dirs {
        fn new() -> Self {
            Self { home: tempfile::tempdir().unwrap(), root: tempfile::tempdir().unwrap(), custom: tempfile::tempdir().unwrap() }
        }

        fn user(&self) -> PathBuf {
            self.home.path().join(".config/dask")
        }

        fn write(&self, dir: &Path, name: &str, text: &str) -> PathBuf {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join(name), text).unwrap();
            dir.join(name)
        }

        /// The environment with HOME and DASK_ROOT_CONFIG set, DASK_CONFIG when `custom`.
        fn env(&self, custom: bool, vars: &[(&'static str, &str)]) -> MapEnv {
            let mut env = HashMap::from([("HOME", self.home.path().display().to_string()), ("DASK_ROOT_CONFIG", self.root.path().display().to_string())]);
            if custom {
                env.insert("DASK_CONFIG", self.custom.path().display().to_string());
            }
            env.extend(vars.iter().map(|(k, v)| (*k, v.to_string())));
            MapEnv(env)
        }

        fn get(&self, env: &MapEnv, key: &str) -> Option<(Value, Origin)> {
            let config = DaskConfig::load(env, &[key]).unwrap();
            config.get(key).map(|(value, origin)| (value.clone(), origin.clone()))
        }
    }

    #[test]
    fn the_variable_wins_over_every_file() {
        let dirs = Dirs::new();
        dirs.write(&dirs.user(), "coiled.yaml", "coiled:\n  token: from-file\n");
        let env = dirs.env(false, &[("DASK_COILED__TOKEN", "from-env")]);
        assert_eq!(dirs.get(&env, "coiled.token"), Some((json!("from-env"), Origin::Variable("DASK_COILED__TOKEN".into()))));
    }

    #[test]
    fn files_of_later_paths_win_and_earlier_ones_fill_in() {
        let dirs = Dirs::new();
        dirs.write(dirs.root.path(), "a.yaml", "coiled:\n  token: root\n  server: root-server\n  user: root-user\n");
        let user = dirs.write(&dirs.user(), "coiled.yaml", "coiled:\n  token: user\n  server: user-server\n");
        let custom = dirs.write(dirs.custom.path(), "coiled.yaml", "coiled:\n  token: custom\n");
        let env = dirs.env(true, &[]);
        assert_eq!(dirs.get(&env, "coiled.token"), Some((json!("custom"), Origin::File(custom))));
        assert_eq!(dirs.get(&env, "coiled.server"), Some((json!("user-server"), Origin::File(user))));
        assert_eq!(dirs.get(&env, "coiled.user").unwrap().0, json!("root-user"));
        assert_eq!(dirs.get(&dirs.env(false, &[]), "coiled.token").unwrap().0, json!("user"));
        let config = DaskConfig::load(&env, &[]).unwrap();
        assert_eq!(config.paths(), [dirs.root.path().to_owned(), dirs.user(), dirs.custom.path().to_owned()]);
    }

    #[test]
    fn within_a_directory_later_names_win_and_only_yaml_and_json_count() {
        let dirs = Dirs::new();
        dirs.write(&dirs.user(), "a.yml", "coiled:\n  token: a\n");
        dirs.write(&dirs.user(), "b.JSON", "{\"coiled\": {\"token\": \"b\"}}");
        dirs.write(&dirs.user(), "c.txt", "coiled:\n  token: c\n");
        dirs.write(&dirs.user(), ".yaml", "coiled:\n  token: hidden\n");
        std::fs::create_dir_all(dirs.user().join("d.yaml")).unwrap();
        let env = dirs.env(false, &[]);
        assert_eq!(dirs.get(&env, "coiled.token").unwrap().0, json!("b"));
        dirs.write(&dirs.user(), "B.yaml", "coiled:\n  token: upper-b\n");
        assert_eq!(dirs.get(&env, "coiled.token").unwrap().0, json!("b"), "upper case sorts first");
    }

    #[test]
    fn dask_config_may_name_a_file() {
        let dirs = Dirs::new();
        let file = dirs.write(dirs.custom.path(), "any-name.conf", "coiled:\n  token: in-a-file\n");
        let mut env = dirs.env(false, &[]);
        env.0.insert("DASK_CONFIG", file.display().to_string());
        assert_eq!(dirs.get(&env, "coiled.token"), Some((json!("in-a-file"), Origin::File(file))));
    }

    #[test]
    fn a_null_hides_lower_sources_but_a_section_that_is_not_a_mapping_does_not() {
        let dirs = Dirs::new();
        dirs.write(&dirs.user(), "coiled.yaml", "coiled:\n  token: user\n");
        dirs.write(dirs.custom.path(), "coiled.yaml", "coiled:\n  token:\n");
        assert_eq!(dirs.get(&dirs.env(true, &[]), "coiled.token").unwrap().0, Value::Null);

        dirs.write(dirs.custom.path(), "coiled.yaml", "coiled: not-a-mapping\n");
        assert_eq!(dirs.get(&dirs.env(true, &[]), "coiled.token").unwrap().0, json!("user"));
        dirs.write(dirs.custom.path(), "coiled.yaml", "coiled:\n  server: elsewhere\n");
        assert_eq!(dirs.get(&dirs.env(true, &[]), "coiled.token").unwrap().0, json!("user"));
        assert_eq!(dirs.get(&dirs.env(true, &[("DASK_COILED__TOKEN", "None")]), "coiled.token").unwrap().0, Value::Null);
    }

    #[test]
    fn keys_match_with_dashes_and_underscores_alike() {
        let dirs = Dirs::new();
        dirs.write(&dirs.user(), "coiled.yaml", "coiled:\n  backend_options:\n    region-name: us-east-2\n");
        let env = dirs.env(false, &[]);
        assert_eq!(dirs.get(&env, "coiled.backend-options.region_name").unwrap().0, json!("us-east-2"));
        assert_eq!(variable_name("coiled.backend-options"), "DASK_COILED__BACKEND_OPTIONS");
        let env = dirs.env(false, &[("DASK_COILED__BACKEND_OPTIONS", "from-env")]);
        assert_eq!(dirs.get(&env, "coiled.backend-options").unwrap().0, json!("from-env"));
    }

    #[test]
    fn empty_and_unreadable_files_are_skipped_malformed_ones_are_errors() {
        let dirs = Dirs::new();
        dirs.write(&dirs.user(), "a.yaml", "# nothing but a comment\n");
        dirs.write(&dirs.user(), "b.yaml", "");
        assert_eq!(dirs.get(&dirs.env(false, &[]), "coiled.token"), None);

        for text in ["coiled:\n  token: [s3cr3t-t0ken\n", "coiled:\n token: s3cr3t-t0ken\n  user: x\n", "- s3cr3t-t0ken\n", "s3cr3t-t0ken\n"] {
            let file = dirs.write(&dirs.user(), "c.yaml", text);
            let error = DaskConfig::load(&dirs.env(false, &[]), &["coiled.token"]).unwrap_err();
            assert_eq!(error.what, format!("dask config {}", file.display()));
            assert!(!error.to_string().contains("s3cr3t"), "the token leaked into: {error}");
            assert!(error.cause.starts_with("not valid YAML at line ") || error.cause.contains("where dask needs a mapping"), "{error}");
        }
    }

    #[test]
    fn variables_are_read_as_dask_reads_them() {
        for (text, value) in [
            ("plain-token", json!("plain-token")),
            ("'quoted'", json!("quoted")),
            ("  \"double\" ", json!("double")),
            ("None", Value::Null),
            ("NULL", Value::Null),
            ("True", json!(true)),
            ("false", json!(false)),
            (" true", json!(" true")),
            ("1e3", json!(1000.0)),
            ("abc123", json!("abc123")),
            ("[not, python]", json!("[not, python]")),
        ] {
            assert_eq!(interpret(text), Some(value), "{text}");
        }
        assert_eq!(interpret("'it\\'s'"), None);
        assert_eq!(interpret("'''triple'''"), None);

        let dirs = Dirs::new();
        let error = DaskConfig::load(&dirs.env(false, &[("DASK_COILED__TOKEN", "'s3cr3t\\n'")]), &["coiled.token"]).unwrap_err();
        assert_eq!(error.what, "DASK_COILED__TOKEN");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
    }
}
