//! Synthetic patients for the development network and the demo: made-up people
//! (no real data) with the laboratory results a hospital lab produces, as FHIR R4
//! transaction bundles the connector's importer takes.
//!
//! Everything follows from a seed, so a network seeded twice holds the same
//! people and the same results. Every patient is known at every hospital and has
//! recent panels at each, so any pair of hospitals can show an exchange.

use std::cmp::Reverse;
use std::collections::HashSet;
use std::sync::LazyLock;

use chrono::{Days, NaiveDate};
use locus_hospital_connector::fhir::{OBSERVATION_CATEGORY_SYSTEM, US_SSN_SYSTEM};
use serde_json::{json, Value};

const LOINC_SYSTEM: &str = "http://loinc.org";
const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
const REPORT_CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0074";
const INTERPRETATION_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

/// How far back results go, in days.
const HISTORY_DAYS: u64 = 730;
/// Every hospital has a visit of every patient at most this many days before
/// today: inside the demo's window of the last two calendar months (59 days or more).
const RECENT_DAYS: u64 = 45;
/// The number of distinct `999-GG-SSSS` values (group 01–99, serial 0001–9999),
/// and so the largest cohort. Area 999 is never issued: no real person's number.
const IDENTIFIERS: usize = 99 * 9999;
/// Ages are 18 to 90 in this year; fixed so the cohort does not depend on when
/// it is made.
const AGE_REFERENCE_YEAR: i32 = 2026;

/// A group of made-up patients with everything needed to draw their records.
#[derive(Debug, Clone)]
pub struct Cohort {
    seed: u64,
    patients: Vec<Patient>,
}

/// Who a synthetic patient is, for scripts and the demo to look them up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatientSummary {
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The value of the Patient's identifier with system `http://hl7.org/fhir/sid/us-ssn`.
    pub identifier: String,
}

impl Cohort {
    /// The patients, in cohort order.
    pub fn summaries(&self) -> Vec<PatientSummary> {
        self.patients
            .iter()
            .map(|p| PatientSummary {
                name: format!("{} {}", p.given, p.family),
                birth_date: p.birth_date.to_string(),
                identifier: p.identifier.clone(),
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.patients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patients.is_empty()
    }
}

/// `count` patients (at most 989,901, the number of distinct identifiers) drawn
/// from `seed`. A smaller count gives the first patients of a larger one.
pub fn cohort(seed: u64, count: usize) -> Cohort {
    let count = count.min(IDENTIFIERS);
    let mut rng = Rng(seed);
    let mut identifiers = HashSet::with_capacity(count);
    let mut names = HashSet::with_capacity(count);
    let mut patients = Vec::with_capacity(count);
    while patients.len() < count {
        let identifier = format!("999-{:02}-{:04}", 1 + rng.below(99), 1 + rng.below(9999));
        if !identifiers.insert(identifier.clone()) {
            continue;
        }
        let year = AGE_REFERENCE_YEAR - 19 - rng.below(72) as i32;
        let (month, day) = (1 + rng.below(12) as u32, 1 + rng.below(28) as u32);
        let Some(birth_date) = NaiveDate::from_ymd_opt(year, month, day) else {
            continue;
        };
        // A few tries for a name not yet taken, so the demo's people are told apart.
        let mut tries = 0;
        let (female, given, family) = loop {
            let female = rng.chance(0.5);
            let given = rng.pick(if female { &FEMALE_NAMES } else { &MALE_NAMES });
            let family = rng.pick(&FAMILY_NAMES);
            tries += 1;
            if names.insert((given, family)) || tries == 8 {
                break (female, given, family);
            }
        };
        let health = Health::draw(&mut rng, female);
        patients.push(Patient {
            given,
            family,
            female,
            birth_date,
            identifier,
            health,
            stream: rng.next_u64(),
        });
    }
    Cohort { seed, patients }
}

/// One bundle per patient, holding what hospital `hospital` (counting from 0, of
/// `hospitals`) recorded about them up to the day before `today`: the Patient and
/// this hospital's share of the patient's laboratory panels. Empty if
/// `hospital` is not one of the `hospitals`.
pub fn hospital_bundles(
    cohort: &Cohort,
    hospital: usize,
    hospitals: usize,
    today: NaiveDate,
) -> Vec<Value> {
    if hospital >= hospitals {
        return Vec::new();
    }
    cohort
        .patients
        .iter()
        .enumerate()
        .map(|(index, patient)| {
            let ids = Ids {
                seed: cohort.seed,
                patient: index,
                hospital,
                counter: 0,
            };
            patient.bundle(ids, hospital, hospitals, today)
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Patient {
    given: &'static str,
    family: &'static str,
    female: bool,
    birth_date: NaiveDate,
    identifier: String,
    health: Health,
    /// Seeds the patient's visits, so every hospital's share is drawn the same way.
    stream: u64,
}

/// A laboratory visit: when, where, and the seed of what was measured.
struct Visit {
    hospital: usize,
    days_ago: u64,
    stream: u64,
}

impl Patient {
    /// Routine visits, one in each of equal slots of the history (so the first
    /// ones are over a year old), alternating between hospitals; then a recent
    /// visit at every hospital.
    fn visits(&self, hospitals: usize) -> Vec<Visit> {
        let mut rng = Rng(self.stream);
        let routine = 4 + rng.below(5);
        let slot = (HISTORY_DAYS - RECENT_DAYS) / routine;
        let phase = rng.below(hospitals as u64) as usize;
        let mut visits: Vec<Visit> = (0..routine)
            .map(|n| Visit {
                hospital: (n as usize + phase) % hospitals,
                days_ago: HISTORY_DAYS - n * slot - rng.below(slot),
                stream: rng.next_u64(),
            })
            .collect();
        visits.extend((0..hospitals).map(|hospital| Visit {
            hospital,
            days_ago: 1 + rng.below(RECENT_DAYS),
            stream: rng.next_u64(),
        }));
        visits
    }

    fn bundle(&self, mut ids: Ids, hospital: usize, hospitals: usize, today: NaiveDate) -> Value {
        let patient_id = ids.fresh();
        let subject = json!({ "reference": format!("urn:uuid:{patient_id}") });
        let mut entries = vec![entry(&patient_id, self.resource(&patient_id))];
        let mut visits: Vec<Visit> = self
            .visits(hospitals)
            .into_iter()
            .filter(|v| v.hospital == hospital)
            .collect();
        visits.sort_by_key(|v| Reverse(v.days_ago));
        for visit in visits {
            let Some(day) = today.checked_sub_days(Days::new(visit.days_ago)) else {
                continue;
            };
            // Only for a `today` decades before the reference year.
            if day <= self.birth_date {
                continue;
            }
            let mut rng = Rng(visit.stream);
            let collected = 7 * 60 + rng.below(5 * 60);
            let issued = collected + 40 + rng.below(260);
            let when = Timing {
                effective: timestamp(day, collected),
                issued: timestamp(day, issued),
            };
            let ordered: Vec<&Panel> = PANELS
                .iter()
                .zip(self.health.panel_odds)
                .filter(|(_, odds)| rng.chance(*odds))
                .map(|(panel, _)| panel)
                .collect();
            // A visit with nothing ordered would not be a lab visit: default to the BMP.
            let ordered = if ordered.is_empty() {
                vec![&PANELS[BMP_PANEL]]
            } else {
                ordered
            };
            let values = self.health.sample(&mut rng);
            for panel in ordered {
                let mut results = Vec::with_capacity(panel.analytes.len());
                for &analyte in panel.analytes {
                    let id = ids.fresh();
                    let resource =
                        observation(&id, &ANALYTES[analyte], values[analyte], &subject, &when);
                    entries.push(entry(&id, resource));
                    results.push(json!({ "reference": format!("urn:uuid:{id}") }));
                }
                let id = ids.fresh();
                entries.push(entry(&id, report(&id, panel, results, &subject, &when)));
            }
        }
        json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
    }

    fn resource(&self, id: &str) -> Value {
        json!({
            "resourceType": "Patient",
            "id": id,
            "meta": test_data(),
            "identifier": [{
                "type": { "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                    "code": "SS",
                    "display": "Social Security number"
                }] },
                "system": US_SSN_SYSTEM,
                "value": self.identifier
            }],
            "name": [{ "use": "official", "family": self.family, "given": [self.given] }],
            "gender": if self.female { "female" } else { "male" },
            "birthDate": self.birth_date.to_string()
        })
    }
}

/// The patient's physiology: each analyte's baseline and how often each panel is
/// ordered, so their results are consistent from visit to visit.
#[derive(Debug, Clone)]
struct Health {
    baseline: [f64; ANALYTE_COUNT],
    panel_odds: [f64; PANELS.len()],
}

impl Health {
    /// A healthy baseline, shifted by sex and by the odd chronic condition
    /// (diabetes, high cholesterol, kidney disease) that makes results abnormal.
    fn draw(rng: &mut Rng, female: bool) -> Self {
        let mut baseline = [0.0; ANALYTE_COUNT];
        for (value, analyte) in baseline.iter_mut().zip(ANALYTES.iter()) {
            if let Model::Drawn { mean, between, .. } = analyte.model {
                *value = mean + between * rng.normal();
            }
        }
        if female {
            baseline[HGB] -= 1.4;
            baseline[RBC] -= 0.4;
            baseline[CREAT] -= 0.2;
            baseline[HDL] += 10.0;
        }
        // In `PANELS` order: CBC, metabolic panel, lipids, HbA1c.
        let mut panel_odds = [0.7, 0.85, 0.3, 0.2];
        if rng.chance(0.15) {
            baseline[GLU] += 40.0 + 40.0 * rng.unit();
            baseline[A1C] += 1.3 + 2.0 * rng.unit();
            baseline[TG] += 40.0;
            panel_odds[A1C_PANEL] = 0.9;
        }
        if rng.chance(0.25) {
            baseline[LDL] += 35.0 + 30.0 * rng.unit();
            baseline[TG] += 60.0;
            baseline[HDL] -= 8.0;
            panel_odds[LIPID_PANEL] = 0.5;
        }
        if rng.chance(0.08) {
            baseline[CREAT] += 0.5 + 0.8 * rng.unit();
            baseline[BUN] += 8.0 + 10.0 * rng.unit();
            baseline[K] += 0.4;
            baseline[CA] -= 0.3;
            baseline[HGB] -= 1.0;
        }
        Self {
            baseline,
            panel_odds,
        }
    }

    /// One blood sample: baseline plus measurement noise, never below a quarter
    /// of the population mean (no lab reports a negative count).
    fn sample(&self, rng: &mut Rng) -> [f64; ANALYTE_COUNT] {
        let mut values = self.baseline;
        for (value, analyte) in values.iter_mut().zip(ANALYTES.iter()) {
            if let Model::Drawn { mean, within, .. } = analyte.model {
                *value = (*value + within * rng.normal()).max(mean / 4.0);
            }
        }
        values[HCT] = values[HGB] * 2.95 + 0.7 * rng.normal();
        values[CHOL] = values[LDL] + values[HDL] + values[TG] / 5.0 + 4.0 * rng.normal();
        values
    }
}

/// Effective and issued instants of one sample's results.
struct Timing {
    effective: String,
    issued: String,
}

/// `day` at `minutes` past midnight UTC, as a FHIR instant.
fn timestamp(day: NaiveDate, minutes: u64) -> String {
    format!("{day}T{:02}:{:02}:00Z", minutes / 60, minutes % 60)
}

fn entry(id: &str, resource: Value) -> Value {
    let resource_type = resource["resourceType"].clone();
    json!({
        "fullUrl": format!("urn:uuid:{id}"),
        "resource": resource,
        "request": { "method": "POST", "url": resource_type }
    })
}

/// The HL7 security label for test data, so no system mistakes these for real records.
fn test_data() -> Value {
    json!({ "security": [{
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
        "code": "HTEST",
        "display": "test health data"
    }] })
}

fn loinc(code: &str, display: &str, text: &str) -> Value {
    json!({ "coding": [{ "system": LOINC_SYSTEM, "code": code, "display": display }], "text": text })
}

fn observation(id: &str, analyte: &Analyte, value: f64, subject: &Value, when: &Timing) -> Value {
    let value = round(value, analyte.decimals);
    let (flag, meaning) = if value < analyte.low {
        ("L", "Low")
    } else if value > analyte.high {
        ("H", "High")
    } else {
        ("N", "Normal")
    };
    json!({
        "resourceType": "Observation",
        "id": id,
        "meta": test_data(),
        "status": "final",
        "category": [{ "coding": [{
            "system": OBSERVATION_CATEGORY_SYSTEM,
            "code": "laboratory",
            "display": "Laboratory"
        }] }],
        "code": loinc(analyte.loinc, analyte.display, analyte.text),
        "subject": subject,
        "effectiveDateTime": when.effective,
        "issued": when.issued,
        "valueQuantity": analyte.quantity(value),
        "interpretation": [{ "coding": [{
            "system": INTERPRETATION_SYSTEM,
            "code": flag,
            "display": meaning
        }] }],
        "referenceRange": [{ "low": analyte.quantity(analyte.low), "high": analyte.quantity(analyte.high) }]
    })
}

fn report(id: &str, panel: &Panel, results: Vec<Value>, subject: &Value, when: &Timing) -> Value {
    json!({
        "resourceType": "DiagnosticReport",
        "id": id,
        "meta": test_data(),
        "status": "final",
        "category": [{ "coding": [{
            "system": REPORT_CATEGORY_SYSTEM,
            "code": "LAB",
            "display": "Laboratory"
        }] }],
        "code": loinc(panel.loinc, panel.display, panel.text),
        "subject": subject,
        "effectiveDateTime": when.effective,
        "issued": when.issued,
        "result": results
    })
}

/// `value` to `decimals` places, as the lab reports it.
fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A laboratory test: LOINC code and names, UCUM unit, adult reference range.
struct Analyte {
    loinc: &'static str,
    /// The LOINC long common name.
    display: &'static str,
    /// What clinicians call it.
    text: &'static str,
    unit: &'static str,
    low: f64,
    high: f64,
    decimals: i32,
    model: Model,
}

impl Analyte {
    /// One row of the analytes' data file (see its header).
    fn parse(row: &'static str) -> Self {
        let fields: Vec<&'static str> = row.split('\t').collect();
        let [loinc, display, text, unit, low, high, decimals, mean, between, within] = fields[..]
        else {
            panic!("an analyte row has ten fields: {row}");
        };
        let number = |field: &str| -> f64 {
            field
                .parse()
                .unwrap_or_else(|_| panic!("not a number in {row}"))
        };
        Self {
            loinc,
            display,
            text,
            unit,
            low: number(low),
            high: number(high),
            decimals: decimals.parse().expect("decimals are a whole number"),
            model: match mean {
                "-" => Model::Derived,
                _ => drawn(number(mean), number(between), number(within)),
            },
        }
    }

    /// `value` in this analyte's unit; whole numbers when it has no decimals.
    fn quantity(&self, value: f64) -> Value {
        let number = if self.decimals == 0 {
            json!(value.round() as i64)
        } else {
            json!(round(value, self.decimals))
        };
        json!({ "value": number, "unit": self.unit, "system": UCUM_SYSTEM, "code": self.unit })
    }
}

/// How an analyte's values arise.
enum Model {
    /// A per-patient baseline around `mean` (spread `between`), measured with
    /// visit-to-visit spread `within`.
    Drawn {
        mean: f64,
        between: f64,
        within: f64,
    },
    /// Follows from other results of the same sample (see [`Health::sample`]).
    Derived,
}

const fn drawn(mean: f64, between: f64, within: f64) -> Model {
    Model::Drawn {
        mean,
        between,
        within,
    }
}

const WBC: usize = 0;
const RBC: usize = 1;
const HGB: usize = 2;
const HCT: usize = 3;
const PLT: usize = 4;
const GLU: usize = 5;
const BUN: usize = 6;
const CREAT: usize = 7;
const NA: usize = 8;
const K: usize = 9;
const CL: usize = 10;
const CO2: usize = 11;
const CA: usize = 12;
const CHOL: usize = 13;
const TG: usize = 14;
const HDL: usize = 15;
const LDL: usize = 16;
const A1C: usize = 17;

/// How many analytes there are: one per index above.
const ANALYTE_COUNT: usize = A1C + 1;

/// The analytes: reference data, kept in a data file rather than in code, one row
/// each in the order of the indexes above.
static ANALYTES: LazyLock<[Analyte; ANALYTE_COUNT]> = LazyLock::new(|| {
    let analytes: Vec<Analyte> = include_str!("synthetic_analytes.tsv")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(Analyte::parse)
        .collect();
    analytes
        .try_into()
        .unwrap_or_else(|rows: Vec<_>| panic!("{} analytes, not {ANALYTE_COUNT}", rows.len()))
});

/// A laboratory order, reported as one DiagnosticReport over its analytes' Observations.
struct Panel {
    loinc: &'static str,
    display: &'static str,
    text: &'static str,
    analytes: &'static [usize],
}

const BMP_PANEL: usize = 1;
const LIPID_PANEL: usize = 2;
const A1C_PANEL: usize = 3;

const PANELS: [Panel; 4] = [
    Panel {
        loinc: "58410-2",
        display: "CBC panel - Blood by Automated count",
        text: "Complete blood count",
        analytes: &[WBC, RBC, HGB, HCT, PLT],
    },
    Panel {
        loinc: "51990-0",
        display: "Basic metabolic panel - Blood",
        text: "Basic metabolic panel",
        analytes: &[GLU, BUN, CREAT, NA, K, CL, CO2, CA],
    },
    Panel {
        loinc: "57698-3",
        display: "Lipid panel with direct LDL - Serum or Plasma",
        text: "Lipid panel",
        analytes: &[CHOL, TG, HDL, LDL],
    },
    Panel {
        loinc: "4548-4",
        display: "Hemoglobin A1c/Hemoglobin.total in Blood",
        text: "Hemoglobin A1c",
        analytes: &[A1C],
    },
];

/// Resource ids for one patient's bundle at one hospital: UUID-shaped (version 4
/// layout), unique among all of the hospital's bundles because their low 62 bits
/// are a bijection of (patient, hospital, counter), and different for another seed.
struct Ids {
    seed: u64,
    patient: usize,
    hospital: usize,
    counter: u64,
}

impl Ids {
    fn fresh(&mut self) -> String {
        const LOW62: u64 = (1 << 62) - 1;
        let key = ((self.patient as u64) << 24)
            | ((self.hospital as u64 & 0xff) << 16)
            | (self.counter & 0xffff);
        self.counter += 1;
        // Xor, multiplication by an odd number and xorshift are each invertible mod 2^62.
        let mut low = (key ^ mix(self.seed)) & LOW62;
        low = low.wrapping_mul(0x9e37_79b9_7f4a_7c15) & LOW62;
        low ^= low >> 29;
        low = low.wrapping_mul(0xbf58_476d_1ce4_e5b9) & LOW62;
        low ^= low >> 32;
        let high = (mix(low ^ self.seed) & !0xf000) | 0x4000;
        let low = low | (0b10 << 62);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            high >> 32,
            (high >> 16) & 0xffff,
            high & 0xffff,
            low >> 48,
            low & 0xffff_ffff_ffff
        )
    }
}

/// splitmix64: small, fast and plenty for demo data, without a dependency.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Approximately standard normal (sum of four uniforms), bounded at ±3.5 so
    /// no result is absurd.
    fn normal(&mut self) -> f64 {
        (self.unit() + self.unit() + self.unit() + self.unit() - 2.0) * 3f64.sqrt()
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The splitmix64 finalizer, a bijection on u64.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Given and family names, one a line: data, kept in files rather than in
/// code, split into lists once.
static FEMALE_NAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| include_str!("synthetic_names/female.txt").lines().collect());
static MALE_NAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| include_str!("synthetic_names/male.txt").lines().collect());
static FAMILY_NAMES: LazyLock<Vec<&str>> =
    LazyLock::new(|| include_str!("synthetic_names/family.txt").lines().collect());

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;
    use locus_hospital_connector::fhir::{parse_bundle, MAX_BUNDLE_BYTES, MAX_ENTRIES};
    use locus_protocol::linkage::normalize_identifier;
    use std::collections::HashMap;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn resources<'a>(bundle: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["resource"])
            .filter(move |r| r["resourceType"] == kind)
    }

    fn day_of(instant: &Value) -> NaiveDate {
        instant.as_str().unwrap()[..10].parse().unwrap()
    }

    const TODAYS: [(i32, u32, u32); 4] =
        [(2026, 11, 21), (2026, 3, 1), (2027, 1, 31), (2028, 2, 29)];

    #[test]
    fn deterministic() {
        let today = date(2026, 11, 21);
        let (a, b) = (cohort(7, 20), cohort(7, 20));
        assert_eq!(a.summaries(), b.summaries());
        assert_eq!(a.len(), 20);
        assert!(!a.is_empty() && cohort(7, 0).is_empty());
        for hospital in 0..2 {
            assert_eq!(
                hospital_bundles(&a, hospital, 2, today),
                hospital_bundles(&b, hospital, 2, today)
            );
        }
        // A smaller cohort is the start of a larger one; another seed, other people.
        assert_eq!(cohort(7, 5).summaries(), a.summaries()[..5]);
        assert_ne!(cohort(8, 20).summaries(), a.summaries());
        // Moving today moves the dates, not the results.
        let later = hospital_bundles(&a, 0, 2, today + Days::new(10));
        let now = hospital_bundles(&a, 0, 2, today);
        let values = |bundles: &[Value]| -> Vec<Value> {
            bundles
                .iter()
                .flat_map(|b| resources(b, "Observation").map(|o| o["valueQuantity"].clone()))
                .collect()
        };
        assert_eq!(values(&later), values(&now));
        assert!(hospital_bundles(&a, 2, 2, today).is_empty());
        assert!(hospital_bundles(&a, 0, 0, today).is_empty());
    }

    #[test]
    fn identifiers_are_synthetic_and_distinct() {
        let people = cohort(0x10c5, 2000).summaries();
        let mut seen = HashSet::new();
        for person in &people {
            let id = &person.identifier;
            let b = id.as_bytes();
            assert!(
                id.len() == 11
                    && id.starts_with("999-")
                    && b[6] == b'-'
                    && id.chars().filter(char::is_ascii_digit).count() == 9,
                "{id}"
            );
            assert!(&id[4..6] != "00" && &id[7..] != "0000", "{id}");
            assert!(
                seen.insert(normalize_identifier(id).unwrap().as_str().to_owned()),
                "{id} twice"
            );
            let born: NaiveDate = person.birth_date.parse().unwrap();
            let age = AGE_REFERENCE_YEAR - born.year();
            assert!((18..=90).contains(&age), "{born}");
            assert!(person.name.split(' ').count() == 2, "{}", person.name);
        }
        // Names are told apart while there are enough to go round.
        let names: HashSet<_> = people[..50].iter().map(|p| &p.name).collect();
        assert_eq!(names.len(), 50);
    }

    #[test]
    fn every_hospital_knows_every_patient_with_old_and_recent_panels() {
        let cohort = cohort(0x10c5, 40);
        let people = cohort.summaries();
        for (y, m, d) in TODAYS {
            let today = date(y, m, d);
            let window = crate::demo::month_start(today, 2);
            for hospitals in [2, 3] {
                for hospital in 0..hospitals {
                    let bundles = hospital_bundles(&cohort, hospital, hospitals, today);
                    assert_eq!(bundles.len(), people.len());
                    for (bundle, person) in bundles.iter().zip(&people) {
                        let patient: Vec<_> = resources(bundle, "Patient").collect();
                        assert_eq!(patient.len(), 1);
                        assert_eq!(patient[0]["identifier"][0]["system"], US_SSN_SYSTEM);
                        assert_eq!(
                            patient[0]["identifier"][0]["value"],
                            person.identifier.as_str()
                        );
                        assert_eq!(patient[0]["birthDate"], person.birth_date.as_str());
                        let name = &patient[0]["name"][0];
                        assert_eq!(
                            format!(
                                "{} {}",
                                name["given"][0].as_str().unwrap(),
                                name["family"].as_str().unwrap()
                            ),
                            person.name
                        );
                        let reports: Vec<NaiveDate> = resources(bundle, "DiagnosticReport")
                            .map(|r| day_of(&r["effectiveDateTime"]))
                            .collect();
                        assert!(
                            reports.iter().any(|d| *d >= window),
                            "no recent panel at {hospital} for {today}"
                        );
                        if hospitals == 2 {
                            assert!(
                                reports.iter().any(|d| (today - *d).num_days() > 365),
                                "no old panel at {hospital}"
                            );
                        }
                        for kind in ["Observation", "DiagnosticReport"] {
                            for r in resources(bundle, kind) {
                                let (effective, issued) =
                                    (day_of(&r["effectiveDateTime"]), day_of(&r["issued"]));
                                assert!(effective < today && issued < today && effective <= issued);
                                assert!((today - effective).num_days() <= HISTORY_DAYS as i64);
                                assert_eq!(r["status"], "final");
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn interpretations_agree_with_ranges() {
        let cohort = cohort(0x10c5, 60);
        let (mut flagged, mut total) = (0, 0);
        let mut codes = HashSet::new();
        for hospital in 0..2 {
            for bundle in hospital_bundles(&cohort, hospital, 2, date(2026, 11, 21)) {
                for obs in resources(&bundle, "Observation") {
                    assert_eq!(obs["category"][0]["coding"][0]["code"], "laboratory");
                    assert_eq!(obs["code"]["coding"][0]["system"], LOINC_SYSTEM);
                    codes.insert(
                        obs["code"]["coding"][0]["code"]
                            .as_str()
                            .unwrap()
                            .to_owned(),
                    );
                    let quantity = &obs["valueQuantity"];
                    let range = &obs["referenceRange"][0];
                    assert_eq!(quantity["system"], UCUM_SYSTEM);
                    assert_eq!(quantity["code"], range["low"]["code"]);
                    assert_eq!(quantity["code"], range["high"]["code"]);
                    let value = quantity["value"].as_f64().unwrap();
                    let (low, high) = (
                        range["low"]["value"].as_f64().unwrap(),
                        range["high"]["value"].as_f64().unwrap(),
                    );
                    assert!(value > 0.0, "{obs}");
                    let want = if value < low {
                        "L"
                    } else if value > high {
                        "H"
                    } else {
                        "N"
                    };
                    let coding = &obs["interpretation"][0]["coding"][0];
                    assert_eq!(coding["system"], INTERPRETATION_SYSTEM);
                    assert_eq!(coding["code"], want, "{obs}");
                    total += 1;
                    flagged += usize::from(want != "N");
                }
            }
        }
        assert_eq!(codes.len(), ANALYTES.len());
        // Mostly normal, with the odd abnormal result.
        assert!(
            flagged * 50 > total && flagged * 5 < total,
            "{flagged} of {total} flagged"
        );
    }

    #[test]
    fn records_name_the_bundles_patient_and_reports_their_results() {
        let cohort = cohort(3, 10);
        for bundle in hospital_bundles(&cohort, 1, 2, date(2026, 11, 21)) {
            let entries = bundle["entry"].as_array().unwrap();
            let patient_url = entries
                .iter()
                .find(|e| e["resource"]["resourceType"] == "Patient")
                .unwrap()["fullUrl"]
                .clone();
            let by_url: HashMap<&str, &Value> = entries
                .iter()
                .map(|e| (e["fullUrl"].as_str().unwrap(), &e["resource"]))
                .collect();
            for e in entries {
                let r = &e["resource"];
                assert_eq!(
                    e["fullUrl"].as_str().unwrap(),
                    format!("urn:uuid:{}", r["id"].as_str().unwrap())
                );
                if r["resourceType"] != "Patient" {
                    assert_eq!(r["subject"]["reference"], patient_url);
                }
            }
            for report in resources(&bundle, "DiagnosticReport") {
                let results = report["result"].as_array().unwrap();
                assert!(!results.is_empty());
                for result in results {
                    let obs = by_url[result["reference"].as_str().unwrap()];
                    assert_eq!(obs["resourceType"], "Observation");
                    assert_eq!(obs["effectiveDateTime"], report["effectiveDateTime"]);
                }
            }
        }
    }

    /// The connector's own importer takes every bundle, and no two records of a
    /// hospital share an id (the store keys records by id).
    #[test]
    fn the_importer_accepts_every_bundle() {
        let cohort = cohort(0x10c5, 30);
        for hospital in 0..2 {
            let mut ids = HashSet::new();
            for (bundle, person) in hospital_bundles(&cohort, hospital, 2, date(2026, 11, 21))
                .iter()
                .zip(cohort.summaries())
            {
                let bytes = serde_json::to_vec(bundle).unwrap();
                let entries = bundle["entry"].as_array().unwrap().len();
                assert!(bytes.len() < MAX_BUNDLE_BYTES / 100 && entries < MAX_ENTRIES / 100);
                let parsed = parse_bundle(&bytes, US_SSN_SYSTEM).unwrap();
                assert_eq!(
                    parsed.identifier,
                    normalize_identifier(&person.identifier).unwrap()
                );
                assert_eq!(parsed.records.len(), entries - 1);
                for record in &parsed.records {
                    assert!(
                        ids.insert(record.resource_id.clone()),
                        "id used twice at hospital {hospital}"
                    );
                    assert!(record.effective_date.is_some());
                    assert_eq!(record.codes.len(), 1);
                    let category = record.categories.concat();
                    assert!(
                        category == "laboratory"
                            || category == format!("{REPORT_CATEGORY_SYSTEM}|LAB"),
                        "{category}"
                    );
                }
            }
        }
    }
}
