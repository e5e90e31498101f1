//! The hashed index: sealed pointers, the scope tags they answer to, and
//! nothing the index could read.

use std::collections::HashSet;

use diesel::prelude::*;
use locus_platform::db::{write_transaction, Migrations, Pool};
use locus_protocol::ids::{HospitalId, PatientKey, PointerId, ScopeTag};

use crate::schema::{pointer_tags, pointers};

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: diesel_migrations::embed_migrations!("../migrations/index-service/sqlite"),
    postgres: diesel_migrations::embed_migrations!("../migrations/index-service/postgres"),
};

const ROWS_PER_INSERT: usize = 1000;
/// Serializes pointer writers on PostgreSQL (see `write_transaction`).
const POINTERS_WRITER_LOCK: i64 = 0x6c6f_6375_735f_7074;

locus_platform::stored_enum! {
    /// Where a pointer stands: only active pointers are discovered.
    pub enum PointerStatus {
        Active = "active",
        /// A newer version of the record replaced it.
        Superseded = "superseded",
        /// Its custodian withdrew it.
        Withdrawn = "withdrawn",
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = pointers)]
pub struct Pointer {
    pub pointer_id: PointerId,
    pub patient_key: PatientKey,
    pub custodian: HospitalId,
    pub sealed: Vec<u8>,
    pub published_at: i64,
    pub status: PointerStatus,
    pub superseded_by: Option<PointerId>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = pointers)]
struct NewPointerRow<'a> {
    pointer_id: &'a PointerId,
    patient_key: &'a PatientKey,
    custodian: &'a HospitalId,
    sealed: &'a [u8],
    published_at: i64,
    status: PointerStatus,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = pointer_tags)]
struct NewTagRow<'a> {
    scope_tag: &'a ScopeTag,
    pointer_id: &'a PointerId,
}

/// A pointer as a custodian publishes it.
#[derive(Debug, Clone)]
pub struct NewPointer {
    pub pointer_id: PointerId,
    pub patient_key: PatientKey,
    pub scope_tags: Vec<ScopeTag>,
    pub sealed: Vec<u8>,
    /// A pointer of the same custodian that this one replaces (a new version).
    pub supersedes: Option<PointerId>,
}

locus_platform::store_error! {
    pub enum PointerError {
        #[error("pointer {0} is already published with other contents or by another custodian")]
        Conflict(PointerId),
        #[error("pointer {0} is not one of this custodian's active pointers")]
        NotOwned(PointerId),
    }
}

#[derive(Debug, Clone)]
pub struct PointerStore {
    pool: Pool,
}

impl PointerStore {
    pub fn open(pool: Pool) -> Result<Self, PointerError> {
        locus_platform::db::run_migrations(&mut *pool.get()?, MIGRATIONS)?;
        Ok(Self { pool })
    }

    /// Publishes a custodian's batch in one transaction: all or nothing.
    /// Re-publishing an identical pointer is a no-op, so a custodian can retry.
    pub fn publish(
        &self,
        custodian: &HospitalId,
        batch: &[NewPointer],
        now_ms: i64,
    ) -> Result<usize, PointerError> {
        let mut pooled = self.pool.get()?;
        write_transaction(&mut pooled, POINTERS_WRITER_LOCK, |conn| {
            let ids: Vec<&PointerId> = batch.iter().map(|p| &p.pointer_id).collect();
            let existing: Vec<Pointer> = pointers::table
                .filter(pointers::pointer_id.eq_any(ids))
                .select(Pointer::as_select())
                .load(conn)?;
            let mut seen = HashSet::new();
            let mut rows = Vec::new();
            let mut tags = Vec::new();
            for pointer in batch {
                let id = &pointer.pointer_id;
                if !seen.insert(id) {
                    return Err(PointerError::Conflict(*id));
                }
                if let Some(old) = existing.iter().find(|e| e.pointer_id == *id) {
                    let same = old.custodian == *custodian
                        && old.patient_key == pointer.patient_key
                        && old.sealed == pointer.sealed;
                    if same {
                        continue;
                    }
                    return Err(PointerError::Conflict(*id));
                }
                if let Some(old) = &pointer.supersedes {
                    let updated = diesel::update(
                        pointers::table
                            .filter(pointers::pointer_id.eq(old))
                            .filter(pointers::custodian.eq(custodian))
                            .filter(pointers::status.eq(PointerStatus::Active)),
                    )
                    .set((
                        pointers::status.eq(PointerStatus::Superseded),
                        pointers::superseded_by.eq(Some(id)),
                    ))
                    .execute(conn)?;
                    if updated != 1 {
                        return Err(PointerError::NotOwned(*old));
                    }
                }
                rows.push(NewPointerRow {
                    pointer_id: id,
                    patient_key: &pointer.patient_key,
                    custodian,
                    sealed: &pointer.sealed,
                    published_at: now_ms,
                    status: PointerStatus::Active,
                });
                let unique: HashSet<&ScopeTag> = pointer.scope_tags.iter().collect();
                tags.extend(unique.into_iter().map(|scope_tag| NewTagRow {
                    scope_tag,
                    pointer_id: id,
                }));
            }
            let inserted = rows.len();
            locus_platform::on_backend!(conn, |conn| {
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(pointers::table)
                        .values(chunk)
                        .execute(conn)?;
                }
                for chunk in tags.chunks(ROWS_PER_INSERT) {
                    diesel::insert_into(pointer_tags::table)
                        .values(chunk)
                        .execute(conn)?;
                }
            });
            Ok(inserted)
        })
    }

    /// Withdraws a custodian's active pointers; someone else's are refused.
    pub fn withdraw(
        &self,
        custodian: &HospitalId,
        ids: &[PointerId],
    ) -> Result<usize, PointerError> {
        let mut pooled = self.pool.get()?;
        write_transaction(&mut pooled, POINTERS_WRITER_LOCK, |conn| {
            for id in ids {
                let updated = diesel::update(
                    pointers::table
                        .filter(pointers::pointer_id.eq(id))
                        .filter(pointers::custodian.eq(custodian))
                        .filter(pointers::status.eq(PointerStatus::Active)),
                )
                .set(pointers::status.eq(PointerStatus::Withdrawn))
                .execute(conn)?;
                if updated != 1 {
                    return Err(PointerError::NotOwned(*id));
                }
            }
            Ok(ids.len())
        })
    }

    /// The active pointers of `patient` carrying any of `tags`: exactly what a
    /// grant covers, and nothing about the rest.
    pub fn discover(
        &self,
        patient: &PatientKey,
        tags: &[ScopeTag],
    ) -> Result<Vec<Pointer>, PointerError> {
        if tags.is_empty() {
            return Ok(Vec::new());
        }
        let matching = pointer_tags::table
            .filter(pointer_tags::scope_tag.eq_any(tags))
            .select(pointer_tags::pointer_id);
        Ok(pointers::table
            .filter(pointers::pointer_id.eq_any(matching))
            .filter(pointers::patient_key.eq(patient))
            .filter(pointers::status.eq(PointerStatus::Active))
            .order(pointers::pointer_id.asc())
            .select(Pointer::as_select())
            .load(&mut *self.pool.get()?)?)
    }
}
