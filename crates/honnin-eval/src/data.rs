//! Where the evaluation data lives, and what a test does when it is absent: the one
//! lookup every data test, benchmark and tool uses.
//!
//! The folder is `$HONNIN_DATA_DIR`, else `../shared/data` beside the repository (the
//! layout described in that folder's README). Tests that need it skip with a message
//! when it is absent, unless `HONNIN_REQUIRE_DATA` is set (CI), where a missing folder
//! is a failure: data tests must never skip there.

use std::path::PathBuf;

/// `$HONNIN_DATA_DIR`, else `../shared/data` beside the repository (it may not exist).
pub fn data_root() -> PathBuf {
    std::env::var_os("HONNIN_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// The data folder if it holds every sub-folder of `needs` (e.g. `["lfw"]`), else `None`.
pub fn find(needs: &[&str]) -> Option<PathBuf> {
    let dir = data_root();
    needs.iter().all(|n| dir.join(n).is_dir()).then_some(dir)
}

/// For tests: the data folder if it holds every sub-folder of `needs`. Otherwise prints
/// `SKIPPED: <what> needs …; nothing was checked` and returns `None` — or, with
/// `HONNIN_REQUIRE_DATA` set, panics (CI never skips a data test).
///
/// # Panics
/// When a folder of `needs` is missing and `HONNIN_REQUIRE_DATA` is set.
pub fn for_test(what: &str, needs: &[&str]) -> Option<PathBuf> {
    if let Some(dir) = find(needs) {
        return Some(dir);
    }
    let dir = data_root();
    let missing: Vec<String> = needs
        .iter()
        .filter(|n| !dir.join(n).is_dir())
        .map(|n| format!("{}/{n}", dir.display()))
        .collect();
    assert!(
        std::env::var_os("HONNIN_REQUIRE_DATA").is_none(),
        "HONNIN_REQUIRE_DATA is set but {what} needs {} (set HONNIN_DATA_DIR)",
        missing.join(", ")
    );
    eprintln!(
        "SKIPPED: {what} needs {} (set HONNIN_DATA_DIR); nothing was checked",
        missing.join(", ")
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_that_does_not_hold_what_is_needed_is_not_found() {
        assert!(find(&["no-such-folder-in-any-data-set"]).is_none());
    }
}
