//! The hospital's own record store: every version of every imported resource, under
//! the patient's pseudonymous key, with a salted commitment to its exact content;
//! and the results this hospital received from others.
//!
//! Content is the resource's original JSON text with insignificant whitespace
//! removed, not RFC 8785 canonical JSON: FHIR carries decimals (`valueQuantity`)
//! and `locus_protocol::jcs` accepts integers only, while re-printing decimals
//! through floating point could change them. The commitment
//! ([`locus_protocol::pointer::content_commitment`]) is therefore over the exact
//! stored bytes, which a retrieval hands over unchanged, so the receiver can check
//! it byte for byte.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use locus_platform::clock::Clock;
use locus_platform::db::{
    first_row, write_transaction, DbConnection, DbError, Migrations, Pool, PooledConnection,
};
use locus_protocol::ids::{Commitment, FhirId, HospitalId, PatientKey, PointerId};
use locus_protocol::pointer::{content_commitment, random_salt, verify_commitment};
use locus_protocol::scope::{record_tag_inputs, ResourceType};
use locus_protocol::sql::Corrupt;
use uuid::Uuid;

use crate::schema::{received_results, records};

/// The connector's migrations, one set per dialect.
pub const MIGRATIONS: Migrations = Migrations {
    sqlite: diesel_migrations::embed_migrations!("../migrations/hospital-connector/sqlite"),
    postgres: diesel_migrations::embed_migrations!("../migrations/hospital-connector/postgres"),
};

// 14 columns per row: well under SQLite's 32766 bound parameters per statement.
const ROWS_PER_INSERT: usize = 500;
// Ids per `IN (...)` lookup.
const KEYS_PER_QUERY: usize = 500;

/// Store failures. Messages name resources by type and id, never by patient.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored {table}.{column} value is not in the expected form")]
    Corrupt {
        table: &'static str,
        column: &'static str,
    },
    /// A typed column read back a value that does not parse.
    #[error(transparent)]
    CorruptColumn(Corrupt),
    #[error("the system random number generator failed")]
    Rng,
    #[error("the {0} is not valid JSON")]
    InvalidJson(&'static str),
    // Messages name no resource: they reach logs. The fields are for callers.
    #[error("a resource appears more than once in one batch")]
    DuplicateInput {
        resource_type: ResourceType,
        resource_id: FhirId,
    },
    #[error("a record version is not in the store")]
    NotFound {
        resource_type: ResourceType,
        resource_id: FhirId,
        version: u32,
    },
    #[error("a record version is already published under another pointer")]
    AlreadyPublished {
        resource_type: ResourceType,
        resource_id: FhirId,
        version: u32,
    },
    #[error("a pointer is not one this hospital published")]
    UnknownPointer(PointerId),
    #[error("this retrieval (pointer and ledger receipt) is already stored")]
    DuplicateReceipt,
    #[error("a version or index number does not fit the database's integer type")]
    Overflow,
}

locus_platform::store_error!(StoreError, CorruptColumn);

/// One resource to store, as the importer (or any other source) derives it,
/// under its patient key `K`: `()` while the key is not known yet (a parsed
/// bundle's records, [`crate::fhir::ParsedRecord`]).
#[derive(Clone, PartialEq, Eq)]
pub struct NewRecordInput<K = PatientKey> {
    pub patient_key: K,
    pub resource_type: ResourceType,
    pub resource_id: FhirId,
    /// Canonical category tokens: `code` for the standard observation categories,
    /// otherwise `system|code`.
    pub categories: Vec<String>,
    /// `system|code` of every coding of the resource's `code`.
    pub codes: Vec<String>,
    pub effective_date: Option<NaiveDate>,
    /// The resource's JSON text as it will be stored and committed to.
    pub content: String,
}

impl<K> NewRecordInput<K> {
    /// The same resource under `patient_key`.
    pub fn with_key(self, patient_key: PatientKey) -> NewRecordInput {
        NewRecordInput {
            patient_key,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            categories: self.categories,
            codes: self.codes,
            effective_date: self.effective_date,
            content: self.content,
        }
    }
}

// Content is health data: its types show its length only.
locus_platform::debug_fields!(NewRecordInput<K>: patient_key, resource_type, resource_id, categories.len(), codes.len(); content_bytes = content.len());

/// What [`RecordStore::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// A resource the store had not seen: version 1.
    Inserted,
    /// Identical to the current version: nothing written.
    Unchanged,
    /// Changed: this new version is now current, the previous one is not.
    NewVersion(u32),
}

/// A `records` row as inserted and stored (see [`Record`] for the decoded form).
#[derive(Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = records)]
pub struct RecordRow {
    pub resource_type: String,
    pub resource_id: String,
    pub version: i32,
    pub patient_key: String,
    pub categories: String,
    pub codes: String,
    pub effective_date: Option<String>,
    pub content: String,
    pub salt: Vec<u8>,
    pub commitment: Vec<u8>,
    pub imported_at: i64,
    pub published_pointer: Option<String>,
    pub current: bool,
    pub withdrawn_at: Option<i64>,
}

locus_platform::debug_fields!(RecordRow: resource_type, resource_id, version; content_bytes = content.len());

/// One version of one of the hospital's records: the resource as it was
/// derived ([`NewRecordInput`], read through `Deref`) and what storing and
/// publishing it added.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    pub input: NewRecordInput,
    pub version: u32,
    pub salt: [u8; 32],
    pub commitment: Commitment,
    /// Unix time in milliseconds.
    pub imported_at: i64,
    pub published_pointer: Option<PointerId>,
    pub current: bool,
    /// When its pointer was withdrawn (Unix milliseconds): never released since.
    pub withdrawn_at: Option<i64>,
}

impl std::ops::Deref for Record {
    type Target = NewRecordInput;

    fn deref(&self) -> &NewRecordInput {
        &self.input
    }
}

locus_platform::debug_fields!(Record: patient_key, resource_type, resource_id, version, commitment, published_pointer, current, withdrawn_at; content_bytes = content.len());

impl Record {
    /// The codes as `(system, code)` pairs, as [`locus_protocol::scope`] takes them.
    pub fn code_pairs(&self) -> Vec<(&str, &str)> {
        self.codes
            .iter()
            .filter_map(|c| c.split_once('|'))
            .collect()
    }

    /// The scope tag inputs this record is published under.
    pub fn tag_inputs(&self) -> Vec<String> {
        let categories: Vec<&str> = self.categories.iter().map(String::as_str).collect();
        let effective = self
            .effective_date
            .map(|d| d.format("%Y-%m-%d").to_string());
        record_tag_inputs(
            self.resource_type,
            &categories,
            &self.code_pairs(),
            effective.as_deref(),
        )
    }

    /// Whether the stored commitment matches the stored content and salt.
    pub fn verify_commitment(&self) -> bool {
        verify_commitment(&self.commitment, &self.salt, self.content.as_bytes())
    }
}

fn corrupt(column: &'static str) -> StoreError {
    StoreError::Corrupt {
        table: "records",
        column,
    }
}

impl TryFrom<RecordRow> for Record {
    type Error = StoreError;

    fn try_from(row: RecordRow) -> Result<Self, StoreError> {
        let string_list = |text: &str, column| {
            serde_json::from_str::<Vec<String>>(text).map_err(|_| corrupt(column))
        };
        Ok(Self {
            input: NewRecordInput {
                patient_key: row
                    .patient_key
                    .parse()
                    .map_err(|_| corrupt("patient_key"))?,
                resource_type: row
                    .resource_type
                    .parse()
                    .map_err(|_| corrupt("resource_type"))?,
                resource_id: row
                    .resource_id
                    .parse()
                    .map_err(|_| corrupt("resource_id"))?,
                categories: string_list(&row.categories, "categories")?,
                codes: string_list(&row.codes, "codes")?,
                effective_date: row
                    .effective_date
                    .as_deref()
                    .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
                    .transpose()
                    .map_err(|_| corrupt("effective_date"))?,
                content: row.content,
            },
            version: u32::try_from(row.version).map_err(|_| corrupt("version"))?,
            salt: row.salt.try_into().map_err(|_| corrupt("salt"))?,
            commitment: Commitment::from_bytes(
                row.commitment
                    .try_into()
                    .map_err(|_| corrupt("commitment"))?,
            ),
            imported_at: row.imported_at,
            published_pointer: row
                .published_pointer
                .as_deref()
                .map(PointerId::from_str)
                .transpose()
                .map_err(|_| corrupt("published_pointer"))?,
            current: row.current,
            withdrawn_at: row.withdrawn_at,
        })
    }
}

/// The record a one-row lookup found, decoded.
fn decoded(row: Result<Option<RecordRow>, StoreError>) -> Result<Option<Record>, StoreError> {
    row?.map(Record::try_from).transpose()
}

/// The pointer a record version was published under, for [`RecordStore::mark_published`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub resource_type: ResourceType,
    pub resource_id: FhirId,
    pub version: u32,
    pub pointer_id: PointerId,
}

/// Rows in the record store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordCount {
    /// Every stored version.
    pub versions: u64,
    /// Current versions only: one per resource.
    pub current: u64,
}

/// A result fetched from another hospital, to be stored.
#[derive(Clone, PartialEq, Eq)]
pub struct NewReceivedResult {
    pub patient_key: PatientKey,
    pub custodian: HospitalId,
    pub pointer_id: PointerId,
    pub resource_type: ResourceType,
    pub resource_id: FhirId,
    pub version: u32,
    /// The resource's JSON text exactly as the custodian committed to it.
    pub content: String,
    pub commitment: Commitment,
    /// The custodian's signed statement about the result (JSON).
    pub provenance: String,
    /// Ledger index of the `record.retrieved` entry.
    pub receipt_index: u64,
}

locus_platform::debug_fields!(NewReceivedResult: patient_key, custodian, pointer_id, receipt_index; content_bytes = content.len());

/// A stored received result: what arrived, and where and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedResult {
    pub id: Uuid,
    /// Unix time in milliseconds.
    pub received_at: i64,
    pub result: NewReceivedResult,
}

impl std::ops::Deref for ReceivedResult {
    type Target = NewReceivedResult;

    fn deref(&self) -> &NewReceivedResult {
        &self.result
    }
}

/// A `received_results` row.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = received_results)]
struct ReceivedRow {
    id: String,
    patient_key: String,
    custodian: String,
    pointer_id: String,
    resource_type: String,
    resource_id: String,
    version: i32,
    content: String,
    commitment: Vec<u8>,
    provenance: String,
    receipt_index: i64,
    received_at: i64,
}

impl TryFrom<ReceivedRow> for ReceivedResult {
    type Error = StoreError;

    fn try_from(row: ReceivedRow) -> Result<Self, StoreError> {
        let bad = |column| StoreError::Corrupt {
            table: "received_results",
            column,
        };
        Ok(Self {
            id: Uuid::try_parse(&row.id).map_err(|_| bad("id"))?,
            received_at: row.received_at,
            result: NewReceivedResult {
                patient_key: row.patient_key.parse().map_err(|_| bad("patient_key"))?,
                custodian: row.custodian.parse().map_err(|_| bad("custodian"))?,
                pointer_id: row.pointer_id.parse().map_err(|_| bad("pointer_id"))?,
                resource_type: row
                    .resource_type
                    .parse()
                    .map_err(|_| bad("resource_type"))?,
                version: u32::try_from(row.version).map_err(|_| bad("version"))?,
                commitment: Commitment::from_bytes(
                    row.commitment.try_into().map_err(|_| bad("commitment"))?,
                ),
                receipt_index: u64::try_from(row.receipt_index)
                    .map_err(|_| bad("receipt_index"))?,
                resource_id: row.resource_id.parse().map_err(|_| bad("resource_id"))?,
                content: row.content,
                provenance: row.provenance,
            },
        })
    }
}

fn is_json(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn to_json_list(items: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(items).map_err(|_| StoreError::InvalidJson("category or code list"))
}

/// Serializes writers of new record versions on PostgreSQL (see
/// [`locus_platform::db::write_transaction`]).
const RECORDS_WRITER_LOCK: i64 = 0x6c6f_6375_735f_7263;

/// The hospital's record store over a connection pool.
#[derive(Debug, Clone)]
pub struct RecordStore {
    pool: Pool,
    /// Dates what is imported, withdrawn and received.
    clock: Clock,
}

impl RecordStore {
    /// Wraps a pool and brings its schema up to date.
    pub fn open(pool: Pool) -> Result<Self, StoreError> {
        let mut conn = pool.get()?;
        locus_platform::db::run_migrations(&mut conn, MIGRATIONS)?;
        Ok(Self {
            pool,
            clock: Clock::system(),
        })
    }

    /// The same store, dating its rows by `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) fn conn(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Stores one resource: see [`RecordStore::upsert_many`].
    pub fn upsert(&self, input: &NewRecordInput) -> Result<Upserted, StoreError> {
        let mut outcomes = self.upsert_many(std::slice::from_ref(input))?;
        outcomes.pop().ok_or(StoreError::Corrupt {
            table: "records",
            column: "version",
        })
    }

    /// Stores resources in one transaction, all or nothing. A resource identical to
    /// its current version (same patient key, categories, codes, date and content
    /// bytes) is left alone; a changed one gets the next version with a fresh salt,
    /// and the previous version stops being current. Outcomes are in input order.
    pub fn upsert_many(&self, inputs: &[NewRecordInput]) -> Result<Vec<Upserted>, StoreError> {
        // Validate and encode everything before touching the database.
        let mut seen = HashSet::with_capacity(inputs.len());
        let mut encoded = Vec::with_capacity(inputs.len());
        for input in inputs {
            if !seen.insert((input.resource_type, input.resource_id.as_str())) {
                return Err(StoreError::DuplicateInput {
                    resource_type: input.resource_type,
                    resource_id: input.resource_id.clone(),
                });
            }
            if !is_json(&input.content) {
                return Err(StoreError::InvalidJson("record content"));
            }
            encoded.push(Encoded {
                patient_key: input.patient_key.to_string(),
                categories: to_json_list(&input.categories)?,
                codes: to_json_list(&input.codes)?,
                effective_date: input
                    .effective_date
                    .map(|d| d.format("%Y-%m-%d").to_string()),
            });
        }

        let mut conn = self.conn()?;
        write_transaction(&mut conn, RECORDS_WRITER_LOCK, |conn| {
            let existing = load_current(conn, inputs)?;
            let imported_at = self.clock.now_ms();
            let mut outcomes = Vec::with_capacity(inputs.len());
            let mut retire = Vec::new();
            let mut rows = Vec::new();
            for (input, enc) in inputs.iter().zip(encoded) {
                let key = (input.resource_type.as_str(), input.resource_id.as_str());
                let found = existing.get(&(input.resource_type, input.resource_id.to_string()));
                let version = match found {
                    None => 1,
                    Some(old) if enc.same_as(old, &input.content) => {
                        outcomes.push(Upserted::Unchanged);
                        continue;
                    }
                    Some(old) => {
                        retire.push((key, old.version));
                        old.version.checked_add(1).ok_or(StoreError::Overflow)?
                    }
                };
                outcomes.push(if version == 1 {
                    Upserted::Inserted
                } else {
                    Upserted::NewVersion(u32::try_from(version).map_err(|_| StoreError::Overflow)?)
                });
                let salt = random_salt().map_err(|_| StoreError::Rng)?;
                rows.push(RecordRow {
                    resource_type: key.0.to_owned(),
                    resource_id: key.1.to_owned(),
                    version,
                    patient_key: enc.patient_key,
                    categories: enc.categories,
                    codes: enc.codes,
                    effective_date: enc.effective_date,
                    commitment: content_commitment(&salt, input.content.as_bytes())
                        .as_bytes()
                        .to_vec(),
                    content: input.content.clone(),
                    salt: salt.to_vec(),
                    imported_at,
                    published_pointer: None,
                    current: true,
                    withdrawn_at: None,
                });
            }
            // Retire before inserting: at most one current version may exist.
            for ((resource_type, resource_id), version) in retire {
                diesel::update(
                    records::table
                        .filter(records::resource_type.eq(resource_type))
                        .filter(records::resource_id.eq(resource_id))
                        .filter(records::version.eq(version)),
                )
                .set(records::current.eq(false))
                .execute(conn)?;
            }
            locus_platform::on_backend!(conn, |conn| {
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(records::table)
                        .values(chunk)
                        .execute(conn)?;
                }
            });
            Ok(outcomes)
        })
    }

    /// The current version of every record of one patient, by type and id.
    pub fn current_for_patient(&self, patient: &PatientKey) -> Result<Vec<Record>, StoreError> {
        let rows: Vec<RecordRow> = records::table
            .filter(records::patient_key.eq(patient))
            // The bare column, not `= true`: SQLite uses the partial indexes
            // (`WHERE "current" ...`) only for the column as written there.
            .filter(records::current)
            .order((records::resource_type.asc(), records::resource_id.asc()))
            .select(RecordRow::as_select())
            .load(&mut self.conn()?)?;
        rows.into_iter().map(Record::try_from).collect()
    }

    /// The current version of one record.
    pub fn get(
        &self,
        resource_type: ResourceType,
        resource_id: &FhirId,
    ) -> Result<Option<Record>, StoreError> {
        let current = records::table
            .filter(records::resource_type.eq(resource_type.as_str()))
            .filter(records::resource_id.eq(resource_id.as_str()))
            .filter(records::current);
        decoded(first_row(&self.pool, current))
    }

    /// One version of one record, current or not (a pointer names a version).
    pub fn get_version(
        &self,
        resource_type: ResourceType,
        resource_id: &FhirId,
        version: u32,
    ) -> Result<Option<Record>, StoreError> {
        let version = i32::try_from(version).map_err(|_| StoreError::Overflow)?;
        let key = (resource_type.as_str(), resource_id.as_str(), version);
        decoded(first_row(&self.pool, records::table.find(key)))
    }

    /// The record version published under `pointer`, if it is one of ours.
    pub fn by_pointer(&self, pointer: &PointerId) -> Result<Option<Record>, StoreError> {
        let published = records::table.filter(records::published_pointer.eq(pointer));
        decoded(first_row(&self.pool, published))
    }

    /// Every version of one record, oldest first.
    pub fn versions(
        &self,
        resource_type: ResourceType,
        resource_id: &FhirId,
    ) -> Result<Vec<Record>, StoreError> {
        let rows: Vec<RecordRow> = records::table
            .filter(records::resource_type.eq(resource_type.as_str()))
            .filter(records::resource_id.eq(resource_id.as_str()))
            .order(records::version.asc())
            .select(RecordRow::as_select())
            .load(&mut self.conn()?)?;
        rows.into_iter().map(Record::try_from).collect()
    }

    /// Up to `limit` current records not yet published, oldest import first.
    pub fn unpublished(&self, limit: u32) -> Result<Vec<Record>, StoreError> {
        let rows: Vec<RecordRow> = records::table
            .filter(records::current)
            .filter(records::published_pointer.is_null())
            .order((
                records::imported_at.asc(),
                records::resource_type.asc(),
                records::resource_id.asc(),
            ))
            .limit(i64::from(limit))
            .select(RecordRow::as_select())
            .load(&mut self.conn()?)?;
        rows.into_iter().map(Record::try_from).collect()
    }

    /// Records the pointers that record versions were published under, in one
    /// transaction. Marking a version again with the same pointer is a no-op; with
    /// another pointer it is an error and nothing is marked.
    pub fn mark_published(&self, published: &[Published]) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        write_transaction(&mut conn, RECORDS_WRITER_LOCK, |conn| {
            for p in published {
                let version = i32::try_from(p.version).map_err(|_| StoreError::Overflow)?;
                let key = (p.resource_type.as_str(), p.resource_id.as_str(), version);
                let updated = diesel::update(
                    records::table
                        .find(key)
                        .filter(records::published_pointer.is_null()),
                )
                .set(records::published_pointer.eq(&p.pointer_id))
                .execute(conn)?;
                if updated == 1 {
                    continue;
                }
                let stored: Option<Option<PointerId>> = records::table
                    .find(key)
                    .select(records::published_pointer)
                    .first(conn)
                    .optional()?;
                match stored {
                    None => {
                        return Err(StoreError::NotFound {
                            resource_type: p.resource_type,
                            resource_id: p.resource_id.clone(),
                            version: p.version,
                        })
                    }
                    Some(Some(existing)) if existing == p.pointer_id => {}
                    Some(_) => {
                        return Err(StoreError::AlreadyPublished {
                            resource_type: p.resource_type,
                            resource_id: p.resource_id.clone(),
                            version: p.version,
                        })
                    }
                }
            }
            Ok(())
        })
    }

    /// Marks the record versions published under `pointers` as withdrawn, in
    /// one transaction; returns how many were not withdrawn already. A pointer
    /// this store never published is [`StoreError::UnknownPointer`], and then
    /// nothing is marked.
    pub fn mark_withdrawn(&self, pointers: &[PointerId]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let now = self.clock.now_ms();
        write_transaction(&mut conn, RECORDS_WRITER_LOCK, |conn| {
            let mut withdrawn = 0;
            for pointer in pointers {
                let updated = diesel::update(
                    records::table
                        .filter(records::published_pointer.eq(pointer))
                        .filter(records::withdrawn_at.is_null()),
                )
                .set(records::withdrawn_at.eq(now))
                .execute(conn)?;
                if updated == 1 {
                    withdrawn += 1;
                    continue;
                }
                let known: i64 = records::table
                    .filter(records::published_pointer.eq(pointer))
                    .count()
                    .get_result(conn)?;
                if known == 0 {
                    return Err(StoreError::UnknownPointer(*pointer));
                }
            }
            Ok(withdrawn)
        })
    }

    /// How many versions and current records the store holds.
    pub fn count(&self) -> Result<RecordCount, StoreError> {
        let mut conn = self.conn()?;
        let versions: i64 = records::table.count().get_result(&mut conn)?;
        let current: i64 = records::table
            .filter(records::current)
            .count()
            .get_result(&mut conn)?;
        let to_u64 = |n: i64| u64::try_from(n).map_err(|_| StoreError::Overflow);
        Ok(RecordCount {
            versions: to_u64(versions)?,
            current: to_u64(current)?,
        })
    }

    /// Stores a result received from another hospital. The same retrieval
    /// (pointer and receipt) stored twice is [`StoreError::DuplicateReceipt`].
    pub fn insert_received(
        &self,
        result: &NewReceivedResult,
    ) -> Result<ReceivedResult, StoreError> {
        if !is_json(&result.content) {
            return Err(StoreError::InvalidJson("received content"));
        }
        if !is_json(&result.provenance) {
            return Err(StoreError::InvalidJson("provenance"));
        }
        let row = ReceivedRow {
            id: Uuid::new_v4().to_string(),
            patient_key: result.patient_key.to_string(),
            custodian: result.custodian.to_string(),
            pointer_id: result.pointer_id.to_string(),
            resource_type: result.resource_type.to_string(),
            resource_id: result.resource_id.to_string(),
            version: i32::try_from(result.version).map_err(|_| StoreError::Overflow)?,
            content: result.content.clone(),
            commitment: result.commitment.as_bytes().to_vec(),
            provenance: result.provenance.clone(),
            receipt_index: i64::try_from(result.receipt_index).map_err(|_| StoreError::Overflow)?,
            received_at: self.clock.now_ms(),
        };
        match diesel::insert_into(received_results::table)
            .values(&row)
            .execute(&mut self.conn()?)
        {
            Ok(_) => ReceivedResult::try_from(row),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(StoreError::DuplicateReceipt)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Every received result about one patient, oldest first.
    pub fn received_for_patient(
        &self,
        patient: &PatientKey,
    ) -> Result<Vec<ReceivedResult>, StoreError> {
        let rows: Vec<ReceivedRow> = received_results::table
            .filter(received_results::patient_key.eq(patient))
            // Ids are random: within one millisecond, the ledger order decides.
            .order((
                received_results::received_at.asc(),
                received_results::receipt_index.asc(),
                received_results::id.asc(),
            ))
            .select(ReceivedRow::as_select())
            .load(&mut self.conn()?)?;
        rows.into_iter().map(ReceivedResult::try_from).collect()
    }

    /// One received result by its id.
    pub fn received(&self, id: Uuid) -> Result<Option<ReceivedResult>, StoreError> {
        let row: Option<ReceivedRow> = received_results::table
            .find(id.to_string())
            .select(ReceivedRow::as_select())
            .first(&mut self.conn()?)
            .optional()?;
        row.map(ReceivedResult::try_from).transpose()
    }
}

/// An input's derived columns in stored form.
struct Encoded {
    patient_key: String,
    categories: String,
    codes: String,
    effective_date: Option<String>,
}

impl Encoded {
    fn same_as(&self, row: &RecordRow, content: &str) -> bool {
        self.patient_key == row.patient_key
            && self.categories == row.categories
            && self.codes == row.codes
            && self.effective_date == row.effective_date
            && content == row.content
    }
}

/// The current rows of the resources among `inputs` that the store already holds.
fn load_current(
    conn: &mut DbConnection,
    inputs: &[NewRecordInput],
) -> Result<HashMap<(ResourceType, String), RecordRow>, StoreError> {
    let mut found = HashMap::new();
    for resource_type in ResourceType::ALL.iter().copied() {
        let ids: Vec<&str> = inputs
            .iter()
            .filter(|i| i.resource_type == resource_type)
            .map(|i| i.resource_id.as_str())
            .collect();
        for chunk in ids.chunks(KEYS_PER_QUERY) {
            let rows: Vec<RecordRow> = records::table
                .filter(records::resource_type.eq(resource_type.as_str()))
                .filter(records::resource_id.eq_any(chunk))
                .filter(records::current)
                .select(RecordRow::as_select())
                .load(conn)?;
            for row in rows {
                found.insert((resource_type, row.resource_id.clone()), row);
            }
        }
    }
    Ok(found)
}
