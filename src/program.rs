//! Finding an installed command-line program (gcloud, modal) on PATH as a shell would, on
//! every platform, without starting it: Windows installs them as `.exe`, `.cmd` or `.bat`.

use std::path::PathBuf;

/// The first file on PATH that runs as `name`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let names: Vec<String> = match cfg!(windows) {
        true => ["exe", "cmd", "bat"].iter().map(|extension| format!("{name}.{extension}")).collect(),
        false => vec![name.to_owned()],
    };
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |name| dir.join(name))).find(|candidate| candidate.is_file())
}
