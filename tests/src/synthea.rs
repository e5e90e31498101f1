//! The Synthea sample split between hospitals the way care is: each
//! encounter, and everything recorded in it, happened at one of them.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What a test needs to know about one patient after the split, including
/// the direct identifiers that must never leave the hospitals.
#[derive(Debug, Clone)]
pub struct SplitPatient {
    pub ssn: String,
    pub mrns: Vec<String>,
    /// Full names ("Given Family") and name parts of five letters or more.
    pub names: Vec<String>,
    pub loinc_codes: BTreeSet<String>,
    /// One partial bundle per hospital.
    pub files: Vec<PathBuf>,
}

/// A laboratory result as a test expects to find it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LabResult {
    pub resource_type: String,
    pub id: String,
    pub date: String,
}

fn reference_of(resource: &Value) -> Option<&str> {
    resource
        .get("encounter")
        .or_else(|| resource.get("context"))
        .and_then(|r| r.get("reference"))
        .and_then(Value::as_str)
}

/// The Synthea sample folder (`shared/data/synthea-r4`); a test fails without it.
pub fn sample_dir() -> PathBuf {
    crate::shared_path("data/synthea-r4")
}

/// The bundles (`.json` files) of a sample folder, sorted by file name.
pub fn bundle_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
                .path()
        })
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Splits every bundle in `source` into `hospitals` partial bundles under
/// `out`: encounter `i` (in bundle order) and what refers to it go to hospital
/// `i % hospitals`; the Patient goes to all; anything else to the first.
pub fn split_by_encounter(source: &Path, out: &Path, hospitals: usize) -> Vec<SplitPatient> {
    let files = bundle_files(source);
    let mut patients = Vec::new();
    for (n, file) in files.iter().enumerate() {
        let bundle: Value =
            serde_json::from_slice(&std::fs::read(file).expect("bundle")).expect("bundle JSON");
        let entries = bundle["entry"].as_array().expect("entries");
        let encounters: HashMap<&str, usize> = entries
            .iter()
            .filter(|e| e["resource"]["resourceType"] == "Encounter")
            .enumerate()
            .filter_map(|(i, e)| Some((e["fullUrl"].as_str()?, i)))
            .collect();
        let mut parts: Vec<Vec<Value>> = vec![Vec::new(); hospitals];
        let mut patient = None;
        let mut loinc_codes = BTreeSet::new();
        for entry in entries {
            let resource = &entry["resource"];
            if let Some(codings) = resource["code"]["coding"].as_array() {
                for coding in codings {
                    if coding["system"] == "http://loinc.org" {
                        if let Some(code) = coding["code"].as_str() {
                            loinc_codes.insert(code.to_owned());
                        }
                    }
                }
            }
            if resource["resourceType"] == "Patient" {
                patient = Some(resource.clone());
                for part in &mut parts {
                    part.push(entry.clone());
                }
                continue;
            }
            let own = entry["fullUrl"].as_str().and_then(|u| encounters.get(u));
            let referred = reference_of(resource).and_then(|r| encounters.get(r));
            let hospital = own.or(referred).map_or(0, |i| i % hospitals);
            parts[hospital].push(entry.clone());
        }
        let patient = patient.expect("a Patient in every bundle");
        let identifiers = patient["identifier"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let value_of = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
            identifiers
                .iter()
                .filter(|i| pred(i))
                .filter_map(|i| i["value"].as_str().map(str::to_owned))
                .collect()
        };
        let ssn = value_of(&|i| i["system"] == "http://hl7.org/fhir/sid/us-ssn")
            .pop()
            .expect("an SSN");
        let mrns = value_of(&|i| i["type"]["coding"][0]["code"] == "MR");
        let mut names = Vec::new();
        for name in patient["name"].as_array().cloned().unwrap_or_default() {
            let family = name["family"].as_str().unwrap_or_default().to_owned();
            for given in name["given"].as_array().cloned().unwrap_or_default() {
                let given = given.as_str().unwrap_or_default().to_owned();
                names.push(format!("{given} {family}"));
                if given.len() >= 5 {
                    names.push(given);
                }
            }
            if family.len() >= 5 {
                names.push(family);
            }
        }
        let mut written = Vec::new();
        for (h, part) in parts.into_iter().enumerate() {
            let mut partial = bundle.clone();
            partial["entry"] = Value::Array(part);
            let path = out
                .join(format!("h{h}"))
                .join(format!("patient-{n:02}.json"));
            std::fs::create_dir_all(path.parent().expect("folder")).expect("folder");
            std::fs::write(&path, serde_json::to_vec(&partial).expect("json")).expect("write");
            written.push(path);
        }
        patients.push(SplitPatient {
            ssn,
            mrns,
            names,
            loinc_codes,
            files: written,
        });
    }
    patients
}

/// The laboratory Observations and DiagnosticReports in a (partial) bundle,
/// read straight from the JSON, independently of the importer.
pub fn lab_results(bundle: &Path) -> Vec<LabResult> {
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(bundle).expect("bundle")).expect("json");
    let mut results = Vec::new();
    for entry in bundle["entry"].as_array().cloned().unwrap_or_default() {
        let resource = &entry["resource"];
        let codes: Vec<String> = resource["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["coding"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["code"].as_str().map(str::to_owned))
            .collect();
        let has = |code: &str| codes.iter().any(|c| c == code);
        let lab = match resource["resourceType"].as_str() {
            Some("Observation") => has("laboratory"),
            Some("DiagnosticReport") => has("LAB"),
            _ => false,
        };
        let date = resource["effectiveDateTime"]
            .as_str()
            .and_then(|d| d.get(..10));
        if let (true, Some(date), Some(id)) = (lab, date, resource["id"].as_str()) {
            results.push(LabResult {
                resource_type: resource["resourceType"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                id: id.to_owned(),
                date: date.to_owned(),
            });
        }
    }
    results.sort();
    results
}
