//! Imports FHIR bundles into the record store, one bundle per transaction: a
//! bundle is stored entirely or not at all, and importing it again changes nothing.
//!
//! Logs carry counts and pseudonymous patient keys only: never file names (Synthea
//! names files after the patient), identifiers, names or codes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use locus_protocol::ids::PatientKey;
use locus_protocol::linkage::{patient_key, LinkageKey};

use crate::fhir::{self, FhirError, MAX_BUNDLE_BYTES};
use crate::records::{RecordStore, StoreError, Upserted};

/// What importing one bundle did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportReport {
    pub patient_key: PatientKey,
    /// Records seen for the first time.
    pub inserted: usize,
    /// Records identical to their stored current version.
    pub unchanged: usize,
    /// Records that changed and got a new version.
    pub new_versions: usize,
}

/// Totals over the files of [`import_paths`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub files: usize,
    pub inserted: usize,
    pub unchanged: usize,
    pub new_versions: usize,
}

/// Where [`import_paths`] has got to: reported once before the first file and
/// once after each file, so a caller can drive a progress bar (by files or bytes).
#[derive(Debug, Clone, Copy)]
pub struct ImportProgress<'a> {
    /// The file just imported; `None` for the initial report.
    pub file: Option<&'a Path>,
    /// Its report; `None` for the initial report.
    pub report: Option<&'a ImportReport>,
    pub files_done: usize,
    pub files_total: usize,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// Import failures. A path appears only in [`ImportError::File`], meant for the
/// operator who named it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Bundle(#[from] FhirError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{path} is neither a file nor a folder")]
    NotAFile { path: PathBuf },
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: Box<ImportError>,
    },
}

/// Imports one bundle: derives the patient key from the Patient's identifier
/// with `identifier_system`, and stores every Observation and DiagnosticReport
/// under it in one transaction.
pub fn import_bundle(
    store: &RecordStore,
    linkage_key: &LinkageKey,
    identifier_system: &str,
    bundle_json: &[u8],
) -> Result<ImportReport, ImportError> {
    let bundle = fhir::parse_bundle(bundle_json, identifier_system)?;
    let key = patient_key(linkage_key, &bundle.identifier);
    let inputs: Vec<_> = bundle
        .records
        .into_iter()
        .map(|r| r.with_key(key))
        .collect();
    let mut report = ImportReport {
        patient_key: key,
        inserted: 0,
        unchanged: 0,
        new_versions: 0,
    };
    for outcome in store.upsert_many(&inputs)? {
        match outcome {
            Upserted::Inserted => report.inserted += 1,
            Upserted::Unchanged => report.unchanged += 1,
            Upserted::NewVersion(_) => report.new_versions += 1,
        }
    }
    tracing::info!(
        patient_key = %report.patient_key,
        inserted = report.inserted,
        unchanged = report.unchanged,
        new_versions = report.new_versions,
        skipped = bundle.skipped,
        "bundle imported"
    );
    Ok(report)
}

/// Imports bundles from files and folders (every `*.json` directly in a folder,
/// in name order), one transaction per file. Stops at the first failing file,
/// naming it; the files before it stay imported, and since importing is
/// idempotent, running the same command again resumes where it stopped.
pub fn import_paths(
    store: &RecordStore,
    linkage_key: &LinkageKey,
    identifier_system: &str,
    paths: &[PathBuf],
    progress: &dyn Fn(ImportProgress<'_>),
) -> Result<ImportSummary, ImportError> {
    let files = collect_files(paths)?;
    let bytes_total = files.iter().map(|(_, size)| size).sum();
    let mut summary = ImportSummary::default();
    let mut bytes_done = 0;
    progress(ImportProgress {
        file: None,
        report: None,
        files_done: 0,
        files_total: files.len(),
        bytes_done,
        bytes_total,
    });
    for (path, size) in &files {
        let json = read_bundle(path)?;
        let report =
            import_bundle(store, linkage_key, identifier_system, &json).map_err(|source| {
                ImportError::File {
                    path: path.clone(),
                    source: Box::new(source),
                }
            })?;
        summary.files += 1;
        summary.inserted += report.inserted;
        summary.unchanged += report.unchanged;
        summary.new_versions += report.new_versions;
        bytes_done += size;
        progress(ImportProgress {
            file: Some(path),
            report: Some(&report),
            files_done: summary.files,
            files_total: files.len(),
            bytes_done,
            bytes_total,
        });
    }
    tracing::info!(
        files = summary.files,
        inserted = summary.inserted,
        unchanged = summary.unchanged,
        new_versions = summary.new_versions,
        "import finished"
    );
    Ok(summary)
}

/// The files to import with their sizes, found before any is read so that
/// progress has a total.
fn collect_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, u64)>, ImportError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| ImportError::Read { path, source }
    };
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(read_error(path))?;
        if meta.is_file() {
            files.push((path.clone(), meta.len()));
        } else if meta.is_dir() {
            let mut found = Vec::new();
            for entry in std::fs::read_dir(path).map_err(read_error(path))? {
                let entry = entry.map_err(read_error(path))?;
                let file = entry.path();
                let is_json = file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json"));
                if !is_json {
                    continue;
                }
                let meta = std::fs::metadata(&file).map_err(read_error(&file))?;
                if meta.is_file() {
                    found.push((file, meta.len()));
                }
            }
            found.sort();
            files.extend(found);
        } else {
            return Err(ImportError::NotAFile { path: path.clone() });
        }
    }
    Ok(files)
}

/// Reads a file, refusing more than [`MAX_BUNDLE_BYTES`] even if it grows
/// while being read.
fn read_bundle(path: &Path) -> Result<Vec<u8>, ImportError> {
    let limit = MAX_BUNDLE_BYTES as u64;
    let read_error = |source| ImportError::Read {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    let mut json = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut json)
        .map_err(read_error)?;
    if json.len() as u64 > limit {
        return Err(ImportError::TooLarge {
            path: path.to_owned(),
            limit,
        });
    }
    Ok(json)
}
