//! A directory of `<schema name>.proto` files: the registry for local runs and tests.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::SchemaText;
use crate::error::{Error, Result};

/// Reads schemas from one directory; imports resolve against the same directory.
#[derive(Debug)]
pub struct FileRegistry {
    directory: PathBuf,
}

impl FileRegistry {
    /// A registry over `directory`, which must exist.
    pub fn new(directory: &Path) -> Result<FileRegistry> {
        let directory =
            directory.canonicalize().map_err(|e| Error::bad_request(format!("config: registry.directory: {e}")))?;
        Ok(FileRegistry { directory })
    }

    /// Reads `<name>.proto`.
    pub fn fetch(&self, name: &str) -> Result<SchemaText> {
        // Schema names come from topic names, which cannot hold path separators; refuse them anyway.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(Error::bad_request(format!("schema name `{name}` is not a plain file name")));
        }
        let file_name = format!("{name}.proto");
        let path = self.directory.join(&file_name);
        let definition = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            ErrorKind::NotFound => {
                Error::not_found(format!("schema `{name}` not found: no {file_name} in the schema directory"))
            }
            _ => Error::unavailable(format!("schema `{name}` could not be read: {e}")),
        })?;
        Ok(SchemaText {
            file_name,
            definition,
            version_id: None,
            version_number: None,
            import_dir: Some(self.directory.clone()),
        })
    }
}
