//! A directory of schema files, `<schema name>.proto` (Protobuf), `.avsc` (Avro) or `.json` (JSON
//! Schema): the registry for local runs and tests.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{SchemaFormat, SchemaText};
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

    /// Reads `<name>.proto`, `<name>.avsc` or `<name>.json`: exactly one of them must exist.
    pub fn fetch(&self, name: &str) -> Result<SchemaText> {
        // Schema names come from topic names, which cannot hold path separators; refuse them anyway.
        if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
            return Err(Error::bad_request(format!("schema name `{name}` is not a plain file name")));
        }
        let mut found = Vec::new();
        for (extension, format) in EXTENSIONS {
            let file_name = format!("{name}.{extension}");
            match std::fs::read_to_string(self.directory.join(&file_name)) {
                Ok(definition) => found.push((file_name, definition, format)),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::unavailable(format!("schema `{name}` could not be read: {e}"))),
            }
        }
        if found.len() > 1 {
            let names: Vec<&str> = found.iter().map(|(f, ..)| f.as_str()).collect();
            return Err(Error::internal(format!(
                "schema `{name}` is ambiguous: the schema directory has {}; keep one",
                names.join(" and ")
            )));
        }
        let Some((file_name, definition, format)) = found.pop() else {
            return Err(Error::not_found(format!(
                "schema `{name}` not found: no {name}.proto, {name}.avsc or {name}.json in the schema directory"
            )));
        };
        Ok(SchemaText {
            file_name,
            definition,
            format,
            version_id: None,
            version_number: None,
            import_dir: Some(self.directory.clone()),
            schema_id: None,
            references: Default::default(),
        })
    }
}

/// File extensions and their formats. A JSON Schema without `$schema` is read as 2020-12 (the
/// draft Confluent's registry defaults to; Glue's would be 7, but a file has no registry).
const EXTENSIONS: [(&str, SchemaFormat); 3] = [
    ("proto", SchemaFormat::Protobuf),
    ("avsc", SchemaFormat::Avro),
    ("json", SchemaFormat::JsonSchema { default_draft: jsonschema::Draft::Draft202012 }),
];
