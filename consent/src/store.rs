//! The consent service's storage: codes, devices, challenges, requests, grants
//! and rules, under pseudonymous patient keys only.

use diesel::prelude::*;
use locus_service::db::{DbConnection, DbError, Migrations, Pool, PooledConnection};
use sha2::{Digest, Sha256};

use crate::schema::{access_requests, challenges, devices, enrolment_codes, grants, rules};

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: diesel_migrations::embed_migrations!("../migrations/consent/sqlite"),
    postgres: diesel_migrations::embed_migrations!("../migrations/consent/postgres"),
};

pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const REFUSED: &str = "refused";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for StoreError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(DbError::Query(e))
    }
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        Self::Db(DbError::Pool(e))
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = devices)]
pub struct Device {
    pub device_id: String,
    pub patient_key: String,
    pub public_jwk: String,
    pub enrolled_at: i64,
    pub removed_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = access_requests)]
pub struct AccessRequest {
    pub request_id: String,
    pub patient_key: String,
    pub requester: String,
    /// Canonical JSON of the request terms.
    pub terms: String,
    pub status: String,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub grant_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
pub struct Grant {
    pub grant_id: String,
    pub patient_key: String,
    pub requester: String,
    pub basis: String,
    pub token: String,
    /// The grant's claims as JSON.
    pub claims: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = rules)]
pub struct Rule {
    pub rule_id: String,
    pub patient_key: String,
    /// Canonical JSON of the rule the patient signed.
    pub rule: String,
    pub signature: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = enrolment_codes)]
struct NewEnrolmentCode<'a> {
    code_hash: Vec<u8>,
    patient_key: &'a str,
    issued_by: &'a str,
    expires_at: i64,
}

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

#[derive(Debug, Clone)]
pub struct ConsentStore {
    pool: Pool,
}

impl ConsentStore {
    pub fn open(pool: Pool) -> Result<Self, StoreError> {
        locus_service::db::run_migrations(&mut *pool.get()?, MIGRATIONS)?;
        Ok(Self { pool })
    }

    fn conn(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Stores a new enrolment code (only its hash) for `patient_key`.
    pub fn add_enrolment_code(&self, code: &str, patient_key: &str, issued_by: &str, expires_at: i64) -> Result<(), StoreError> {
        diesel::insert_into(enrolment_codes::table)
            .values(NewEnrolmentCode {
                code_hash: code_hash(code),
                patient_key,
                issued_by,
                expires_at,
            })
            .execute(&mut self.conn()?)?;
        Ok(())
    }

    /// Uses up an unexpired, unused code and returns its patient key; a code
    /// works once, whatever happens after.
    pub fn redeem_enrolment_code(&self, code: &str, now: i64) -> Result<Option<String>, StoreError> {
        let hash = code_hash(code);
        let mut pooled = self.conn()?;
        let conn: &mut DbConnection = &mut pooled;
        conn.transaction::<_, StoreError, _>(|conn| {
            let used = diesel::update(
                enrolment_codes::table
                    .filter(enrolment_codes::code_hash.eq(&hash))
                    .filter(enrolment_codes::used_at.is_null())
                    .filter(enrolment_codes::expires_at.gt(now)),
            )
            .set(enrolment_codes::used_at.eq(Some(now)))
            .execute(conn)?;
            if used != 1 {
                return Ok(None);
            }
            Ok(Some(
                enrolment_codes::table
                    .find(&hash)
                    .select(enrolment_codes::patient_key)
                    .first(conn)?,
            ))
        })
    }

    pub fn add_device(&self, device: &Device) -> Result<(), StoreError> {
        diesel::insert_into(devices::table).values(device).execute(&mut self.conn()?)?;
        Ok(())
    }

    /// An enrolled device that has not been removed.
    pub fn device(&self, device_id: &str) -> Result<Option<Device>, StoreError> {
        Ok(devices::table
            .find(device_id)
            .filter(devices::removed_at.is_null())
            .select(Device::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    pub fn devices_of(&self, patient_key: &str) -> Result<Vec<Device>, StoreError> {
        Ok(devices::table
            .filter(devices::patient_key.eq(patient_key))
            .filter(devices::removed_at.is_null())
            .order(devices::enrolled_at.asc())
            .select(Device::as_select())
            .load(&mut self.conn()?)?)
    }

    /// Removes one of the patient's own devices; false when it is not theirs
    /// or already removed.
    pub fn remove_device(&self, patient_key: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
        let removed = diesel::update(
            devices::table
                .filter(devices::device_id.eq(device_id))
                .filter(devices::patient_key.eq(patient_key))
                .filter(devices::removed_at.is_null()),
        )
        .set(devices::removed_at.eq(Some(now)))
        .execute(&mut self.conn()?)?;
        Ok(removed == 1)
    }

    pub fn add_challenge(&self, nonce: &str, device_id: &str, expires_at: i64) -> Result<(), StoreError> {
        diesel::insert_into(challenges::table)
            .values((
                challenges::nonce.eq(nonce),
                challenges::device_id.eq(device_id),
                challenges::expires_at.eq(expires_at),
            ))
            .execute(&mut self.conn()?)?;
        Ok(())
    }

    /// Uses up an unexpired challenge issued to `device_id`; true once.
    pub fn use_challenge(&self, nonce: &str, device_id: &str, now: i64) -> Result<bool, StoreError> {
        let used = diesel::update(
            challenges::table
                .filter(challenges::nonce.eq(nonce))
                .filter(challenges::device_id.eq(device_id))
                .filter(challenges::used_at.is_null())
                .filter(challenges::expires_at.gt(now)),
        )
        .set(challenges::used_at.eq(Some(now)))
        .execute(&mut self.conn()?)?;
        Ok(used == 1)
    }

    pub fn add_request(&self, request: &AccessRequest) -> Result<(), StoreError> {
        diesel::insert_into(access_requests::table).values(request).execute(&mut self.conn()?)?;
        Ok(())
    }

    pub fn request(&self, request_id: &str) -> Result<Option<AccessRequest>, StoreError> {
        Ok(access_requests::table
            .find(request_id)
            .select(AccessRequest::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    /// A patient's requests in `status`, newest first.
    pub fn requests_of(&self, patient_key: &str, status: &str) -> Result<Vec<AccessRequest>, StoreError> {
        Ok(access_requests::table
            .filter(access_requests::patient_key.eq(patient_key))
            .filter(access_requests::status.eq(status))
            .order(access_requests::created_at.desc())
            .select(AccessRequest::as_select())
            .load(&mut self.conn()?)?)
    }

    /// Decides a pending request (and stores the grant, if any) in one
    /// transaction; false when it was no longer pending.
    pub fn decide(&self, request_id: &str, status: &str, grant: Option<&Grant>, now: i64) -> Result<bool, StoreError> {
        let mut pooled = self.conn()?;
        let conn: &mut DbConnection = &mut pooled;
        conn.transaction::<_, StoreError, _>(|conn| {
            let updated = diesel::update(
                access_requests::table
                    .filter(access_requests::request_id.eq(request_id))
                    .filter(access_requests::status.eq(PENDING)),
            )
            .set((
                access_requests::status.eq(status),
                access_requests::decided_at.eq(Some(now)),
                access_requests::grant_id.eq(grant.map(|g| g.grant_id.clone())),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Ok(false);
            }
            if let Some(grant) = grant {
                diesel::insert_into(grants::table).values(grant).execute(conn)?;
            }
            Ok(true)
        })
    }

    pub fn add_grant(&self, grant: &Grant) -> Result<(), StoreError> {
        diesel::insert_into(grants::table).values(grant).execute(&mut self.conn()?)?;
        Ok(())
    }

    pub fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        Ok(grants::table
            .find(grant_id)
            .select(Grant::as_select())
            .first(&mut self.conn()?)
            .optional()?)
    }

    /// A patient's grants, newest first.
    pub fn grants_of(&self, patient_key: &str) -> Result<Vec<Grant>, StoreError> {
        Ok(grants::table
            .filter(grants::patient_key.eq(patient_key))
            .order(grants::issued_at.desc())
            .select(Grant::as_select())
            .load(&mut self.conn()?)?)
    }

    /// Marks one of the patient's grants revoked; false when it is not theirs
    /// or already revoked.
    pub fn revoke_grant(&self, patient_key: &str, grant_id: &str, now: i64) -> Result<bool, StoreError> {
        let revoked = diesel::update(
            grants::table
                .filter(grants::grant_id.eq(grant_id))
                .filter(grants::patient_key.eq(patient_key))
                .filter(grants::revoked_at.is_null()),
        )
        .set(grants::revoked_at.eq(Some(now)))
        .execute(&mut self.conn()?)?;
        Ok(revoked == 1)
    }

    pub fn add_rule(&self, rule: &Rule) -> Result<(), StoreError> {
        diesel::insert_into(rules::table).values(rule).execute(&mut self.conn()?)?;
        Ok(())
    }

    /// A patient's rules in force.
    pub fn rules_of(&self, patient_key: &str) -> Result<Vec<Rule>, StoreError> {
        Ok(rules::table
            .filter(rules::patient_key.eq(patient_key))
            .filter(rules::revoked_at.is_null())
            .order(rules::created_at.asc())
            .select(Rule::as_select())
            .load(&mut self.conn()?)?)
    }

    pub fn revoke_rule(&self, patient_key: &str, rule_id: &str, now: i64) -> Result<bool, StoreError> {
        let revoked = diesel::update(
            rules::table
                .filter(rules::rule_id.eq(rule_id))
                .filter(rules::patient_key.eq(patient_key))
                .filter(rules::revoked_at.is_null()),
        )
        .set(rules::revoked_at.eq(Some(now)))
        .execute(&mut self.conn()?)?;
        Ok(revoked == 1)
    }
}
