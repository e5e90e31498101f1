//! The consent service's storage: codes, devices, challenges, requests, grants
//! and rules, under pseudonymous patient keys only.

use diesel::prelude::*;
use locus_platform::db::{
    first_row, write_transaction, DbConnection, Migrations, Pool, PooledConnection,
};
use locus_protocol::device::DeviceKeyId;
use locus_protocol::ids::{GrantId, MemberId, PatientKey, RequestId, RuleId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::schema::{
    access_requests, challenges, devices, enrolment_codes, grants, pending_acts, rules,
};

/// The PostgreSQL advisory lock that serializes the consent service's acts
/// (SQLite serializes writers by itself): reserving, finishing and undoing an
/// act each check and change state in one transaction no other act interleaves.
const ACT_LOCK: i64 = 0x6c6f_6375_735f_6163;

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: diesel_migrations::embed_migrations!("../migrations/consent/sqlite"),
    postgres: diesel_migrations::embed_migrations!("../migrations/consent/postgres"),
};

locus_platform::stored_enum! {
    /// Where an access request stands.
    pub enum RequestStatus {
        Pending = "pending",
        Approved = "approved",
        Refused = "refused",
    }

    /// What a grant rests on (the kind of its `GrantBasis`).
    pub enum BasisKind {
        PatientApproval = "patient_approval",
        StandingRule = "standing_rule",
        Emergency = "emergency",
    }
}

locus_platform::store_error! {
    pub enum StoreError {
        #[error("a stored act does not encode: {0}")]
        Encoding(String),
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = devices)]
pub struct Device {
    pub device_id: DeviceKeyId,
    pub patient_key: PatientKey,
    pub public_jwk: String,
    pub enrolled_at: i64,
    pub removed_at: Option<i64>,
    /// The member whose desk issued the enrolment code.
    pub code_issuer: MemberId,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = access_requests)]
pub struct AccessRequest {
    pub request_id: RequestId,
    pub patient_key: PatientKey,
    pub requester: MemberId,
    /// Canonical JSON of the request terms.
    pub terms: String,
    pub status: RequestStatus,
    pub created_at: i64,
    pub decided_at: Option<i64>,
    pub grant_id: Option<GrantId>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = grants)]
pub struct Grant {
    pub grant_id: GrantId,
    pub patient_key: PatientKey,
    pub requester: MemberId,
    pub basis: BasisKind,
    pub token: String,
    /// The grant's claims as JSON.
    pub claims: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable, Serialize, Deserialize)]
#[diesel(table_name = rules)]
pub struct Rule {
    pub rule_id: RuleId,
    pub patient_key: PatientKey,
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
    patient_key: &'a PatientKey,
    issued_by: &'a MemberId,
    expires_at: i64,
}

fn code_hash(code: &str) -> Vec<u8> {
    Sha256::digest(code.as_bytes()).to_vec()
}

/// The change an act makes to these tables once its ledger entries are
/// durable, kept with the act so that a restart can finish it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// Enrols a device with a code (used up when the act is reserved).
    Enrol { device: Device, code_hash: String },
    /// Removes a device (disabled when the act is reserved: taking away is safe early).
    RemoveDevice {
        patient_key: PatientKey,
        device_id: DeviceKeyId,
    },
    /// Files a request, granted at once by a standing rule when `grant` is set.
    Request {
        request: AccessRequest,
        grant: Option<Grant>,
    },
    /// Decides a pending request, with the grant of an approval.
    Decide {
        request_id: RequestId,
        status: RequestStatus,
        grant: Option<Grant>,
    },
    /// Stores an emergency grant.
    Emergency { grant: Grant },
    /// Marks a grant revoked.
    RevokeGrant {
        patient_key: PatientKey,
        grant_id: GrantId,
    },
    /// Stores a standing rule.
    AddRule { rule: Rule },
    /// Revokes a rule (it stops matching when the act is reserved).
    RevokeRule {
        patient_key: PatientKey,
        rule_id: RuleId,
    },
}

impl Change {
    /// The grant this change issues, if any: stored after the rest of the change.
    fn grant(&self) -> Option<&Grant> {
        match self {
            Self::Request { grant, .. } | Self::Decide { grant, .. } => grant.as_ref(),
            Self::Emergency { grant } => Some(grant),
            Self::Enrol { .. }
            | Self::RemoveDevice { .. }
            | Self::RevokeGrant { .. }
            | Self::AddRule { .. }
            | Self::RevokeRule { .. } => None,
        }
    }
}

/// An act under way: the exact signed entries it logs, in order, and the
/// change it then applies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Act {
    /// Canonical signed entries.
    pub entries: Vec<String>,
    pub change: Change,
}

/// Why an act cannot be reserved: the state it would change has moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another act on the same thing is under way.
    UnderWay,
    /// The enrolment code is unknown, used or expired.
    CodeUsed,
    /// The device key was enrolled before (for this patient or another).
    DeviceKnown,
    /// No such active device of this patient.
    NoDevice,
    /// The request was already decided.
    AlreadyDecided,
    /// No such grant of this patient.
    NoGrant,
    /// The grant was already revoked.
    AlreadyRevoked,
    /// A rule with this id exists.
    RuleExists,
    /// No such rule in force of this patient.
    NoRule,
}

#[derive(Debug, Clone)]
pub struct ConsentStore {
    pool: Pool,
}

impl ConsentStore {
    pub fn open(pool: Pool) -> Result<Self, StoreError> {
        locus_platform::db::run_migrations(&mut *pool.get()?, MIGRATIONS)?;
        Ok(Self { pool })
    }

    fn conn(&self) -> Result<PooledConnection, StoreError> {
        Ok(self.pool.get()?)
    }

    /// Stores a new enrolment code (only its hash) for `patient_key`.
    pub fn add_enrolment_code(
        &self,
        code: &str,
        patient_key: &PatientKey,
        issued_by: &MemberId,
        expires_at: i64,
    ) -> Result<(), StoreError> {
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

    /// The patient key and issuing member of an unexpired, unused code.
    pub fn enrolment_code(
        &self,
        code: &str,
        now: i64,
    ) -> Result<Option<(PatientKey, MemberId)>, StoreError> {
        Ok(enrolment_codes::table
            .find(code_hash(code))
            .filter(enrolment_codes::used_at.is_null())
            .filter(enrolment_codes::expires_at.gt(now))
            .select((enrolment_codes::patient_key, enrolment_codes::issued_by))
            .first(&mut self.conn()?)
            .optional()?)
    }

    /// The hash under which a code is stored, hex, as an act keeps it.
    pub fn code_hash_hex(code: &str) -> String {
        hex::encode(code_hash(code))
    }

    /// Whether a device key was ever enrolled, for any patient, removed or not.
    pub fn device_known(&self, device_id: &DeviceKeyId) -> Result<bool, StoreError> {
        Ok(
            diesel::select(diesel::dsl::exists(devices::table.find(device_id)))
                .get_result(&mut self.conn()?)?,
        )
    }

    /// An enrolled device that has not been removed.
    pub fn device(&self, device_id: &DeviceKeyId) -> Result<Option<Device>, StoreError> {
        let enrolled = devices::table
            .find(device_id)
            .filter(devices::removed_at.is_null());
        first_row(&self.pool, enrolled)
    }

    pub fn devices_of(&self, patient_key: &PatientKey) -> Result<Vec<Device>, StoreError> {
        Ok(devices::table
            .filter(devices::patient_key.eq(patient_key))
            .filter(devices::removed_at.is_null())
            .order(devices::enrolled_at.asc())
            .select(Device::as_select())
            .load(&mut self.conn()?)?)
    }

    /// Stores a sign-in challenge, unless the device already has `max_open`
    /// unexpired, unused ones; false then.
    pub fn add_challenge(
        &self,
        nonce: &str,
        device_id: &DeviceKeyId,
        now: i64,
        expires_at: i64,
        max_open: i64,
    ) -> Result<bool, StoreError> {
        let mut pooled = self.conn()?;
        write_transaction(&mut pooled, ACT_LOCK, |conn| {
            // Spent and expired challenges are of no further use.
            diesel::delete(
                challenges::table
                    .filter(challenges::device_id.eq(device_id))
                    .filter(
                        challenges::used_at
                            .is_not_null()
                            .or(challenges::expires_at.le(now)),
                    ),
            )
            .execute(conn)?;
            let open: i64 = challenges::table
                .filter(challenges::device_id.eq(device_id))
                .count()
                .get_result(conn)?;
            if open >= max_open {
                return Ok(false);
            }
            diesel::insert_into(challenges::table)
                .values((
                    challenges::nonce.eq(nonce),
                    challenges::device_id.eq(device_id),
                    challenges::expires_at.eq(expires_at),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    /// Uses up an unexpired challenge issued to `device_id`; true once.
    pub fn use_challenge(
        &self,
        nonce: &str,
        device_id: &DeviceKeyId,
        now: i64,
    ) -> Result<bool, StoreError> {
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

    pub fn request(&self, request_id: &RequestId) -> Result<Option<AccessRequest>, StoreError> {
        first_row(&self.pool, access_requests::table.find(request_id))
    }

    /// A patient's requests in `status`, newest first.
    pub fn requests_of(
        &self,
        patient_key: &PatientKey,
        status: RequestStatus,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        Ok(access_requests::table
            .filter(access_requests::patient_key.eq(patient_key))
            .filter(access_requests::status.eq(status))
            .order(access_requests::created_at.desc())
            .select(AccessRequest::as_select())
            .load(&mut self.conn()?)?)
    }

    pub fn grant(&self, grant_id: &GrantId) -> Result<Option<Grant>, StoreError> {
        first_row(&self.pool, grants::table.find(grant_id))
    }

    /// A patient's grants, newest first.
    pub fn grants_of(&self, patient_key: &PatientKey) -> Result<Vec<Grant>, StoreError> {
        Ok(grants::table
            .filter(grants::patient_key.eq(patient_key))
            .order(grants::issued_at.desc())
            .select(Grant::as_select())
            .load(&mut self.conn()?)?)
    }

    /// A patient's rules in force.
    pub fn rules_of(&self, patient_key: &PatientKey) -> Result<Vec<Rule>, StoreError> {
        Ok(rules::table
            .filter(rules::patient_key.eq(patient_key))
            .filter(rules::revoked_at.is_null())
            .order(rules::created_at.asc())
            .select(Rule::as_select())
            .load(&mut self.conn()?)?)
    }

    pub fn rule(&self, rule_id: &RuleId) -> Result<Option<Rule>, StoreError> {
        first_row(&self.pool, rules::table.find(rule_id))
    }

    // ---- acts: reserve, then log, then finish (or undo) ----

    /// Reserves an act at `now` (Unix milliseconds): checks, under the act lock, that the state it changes
    /// still allows it, makes its reservation (a code used up, a device or a
    /// rule disabled) and records it with its entries. Nothing else can act on
    /// the same thing until it is finished or undone.
    pub fn reserve(
        &self,
        key: &str,
        act: &Act,
        now: i64,
    ) -> Result<Result<(), Conflict>, StoreError> {
        let body = serde_json::to_string(act).map_err(|e| StoreError::Encoding(e.to_string()))?;
        let mut pooled = self.conn()?;
        write_transaction(&mut pooled, ACT_LOCK, |conn| {
            let under_way: bool =
                diesel::select(diesel::dsl::exists(pending_acts::table.find(key)))
                    .get_result(conn)?;
            if under_way {
                return Ok(Err(Conflict::UnderWay));
            }
            if let Err(conflict) = reserve_change(conn, &act.change, now)? {
                return Ok(Err(conflict));
            }
            diesel::insert_into(pending_acts::table)
                .values((
                    pending_acts::act_key.eq(key),
                    pending_acts::act.eq(&body),
                    pending_acts::created_at.eq(now),
                ))
                .execute(conn)?;
            Ok(Ok(()))
        })
    }

    /// Replaces the entries of an act under way (an entry signed again).
    pub fn update_act(&self, key: &str, act: &Act) -> Result<(), StoreError> {
        let body = serde_json::to_string(act).map_err(|e| StoreError::Encoding(e.to_string()))?;
        diesel::update(pending_acts::table.find(key))
            .set(pending_acts::act.eq(body))
            .execute(&mut self.conn()?)?;
        Ok(())
    }

    /// Applies an act whose entries are all durable and forgets it; false if
    /// it was already finished (or undone), so it is applied once.
    pub fn finish(&self, key: &str, now: i64) -> Result<bool, StoreError> {
        let mut pooled = self.conn()?;
        write_transaction(&mut pooled, ACT_LOCK, |conn| {
            let Some(act) = load_act(conn, key)? else {
                return Ok(false);
            };
            apply_change(conn, &act.change, now)?;
            diesel::delete(pending_acts::table.find(key)).execute(conn)?;
            Ok(true)
        })
    }

    /// Gives up an act none of whose entries the ledger took: its reservation
    /// is released, as if it had never been asked.
    pub fn undo(&self, key: &str) -> Result<(), StoreError> {
        let mut pooled = self.conn()?;
        write_transaction(&mut pooled, ACT_LOCK, |conn| {
            let Some(act) = load_act(conn, key)? else {
                return Ok(());
            };
            release_change(conn, &act.change)?;
            diesel::delete(pending_acts::table.find(key)).execute(conn)?;
            Ok(())
        })
    }

    /// Every act under way, oldest first.
    pub fn pending_acts(&self) -> Result<Vec<(String, Act)>, StoreError> {
        let rows: Vec<(String, String)> = pending_acts::table
            .order(pending_acts::created_at.asc())
            .select((pending_acts::act_key, pending_acts::act))
            .load(&mut self.conn()?)?;
        rows.into_iter()
            .map(|(key, body)| {
                let act =
                    serde_json::from_str(&body).map_err(|e| StoreError::Encoding(e.to_string()))?;
                Ok((key, act))
            })
            .collect()
    }
}

fn load_act(conn: &mut DbConnection, key: &str) -> Result<Option<Act>, StoreError> {
    let body: Option<String> = pending_acts::table
        .find(key)
        .select(pending_acts::act)
        .first(conn)
        .optional()?;
    body.map(|b| serde_json::from_str(&b).map_err(|e| StoreError::Encoding(e.to_string())))
        .transpose()
}

/// `take_away!(conn, target, table::at, now)`: takes what a reservation takes
/// (a code used up, a device removed, a rule revoked) by stamping the column
/// `at` with `now` on the row `target` selects, unless it carries a stamp
/// already; whether it did. A macro, as diesel's bounds for a generic update
/// over any table and column would be longer than the statement.
macro_rules! take_away {
    ($conn:expr, $target:expr, $at:expr, $now:expr) => {
        diesel::update($target.filter($at.is_null()))
            .set($at.eq(Some($now)))
            .execute($conn)
            .map(|stamped| stamped == 1)
    };
}

/// `give_back!(conn, target, table::at)`: gives back what [`take_away!`]
/// took, clearing the stamp `at` on the row `target` selects.
macro_rules! give_back {
    ($conn:expr, $target:expr, $at:expr) => {
        diesel::update($target)
            .set($at.eq(None::<i64>))
            .execute($conn)
    };
}

/// Checks that `change` may still happen and makes its reservation.
fn reserve_change(
    conn: &mut DbConnection,
    change: &Change,
    now: i64,
) -> Result<Result<(), Conflict>, StoreError> {
    match change {
        Change::Enrol { device, code_hash } => {
            let known: bool =
                diesel::select(diesel::dsl::exists(devices::table.find(&device.device_id)))
                    .get_result(conn)?;
            if known {
                return Ok(Err(Conflict::DeviceKnown));
            }
            let hash = hex::decode(code_hash).map_err(|e| StoreError::Encoding(e.to_string()))?;
            // Codes expire in Unix seconds; acts are timed in milliseconds.
            let now_secs = now.div_euclid(1000);
            let code = enrolment_codes::table
                .find(&hash)
                .filter(enrolment_codes::patient_key.eq(&device.patient_key))
                .filter(enrolment_codes::expires_at.gt(now_secs));
            let used = take_away!(conn, code, enrolment_codes::used_at, now_secs)?;
            Ok(used.then_some(()).ok_or(Conflict::CodeUsed))
        }
        Change::RemoveDevice {
            patient_key,
            device_id,
        } => {
            let device = devices::table
                .find(device_id)
                .filter(devices::patient_key.eq(patient_key));
            let removed = take_away!(conn, device, devices::removed_at, now)?;
            Ok(removed.then_some(()).ok_or(Conflict::NoDevice))
        }
        Change::Request { .. } | Change::Emergency { .. } => Ok(Ok(())),
        Change::Decide { request_id, .. } => {
            let pending: bool = diesel::select(diesel::dsl::exists(
                access_requests::table
                    .find(request_id)
                    .filter(access_requests::status.eq(RequestStatus::Pending)),
            ))
            .get_result(conn)?;
            Ok(if pending {
                Ok(())
            } else {
                Err(Conflict::AlreadyDecided)
            })
        }
        Change::RevokeGrant {
            patient_key,
            grant_id,
        } => {
            let revoked: Option<Option<i64>> = grants::table
                .find(grant_id)
                .filter(grants::patient_key.eq(patient_key))
                .select(grants::revoked_at)
                .first(conn)
                .optional()?;
            Ok(match revoked {
                None => Err(Conflict::NoGrant),
                Some(Some(_)) => Err(Conflict::AlreadyRevoked),
                Some(None) => Ok(()),
            })
        }
        Change::AddRule { rule } => {
            let taken: bool = diesel::select(diesel::dsl::exists(rules::table.find(&rule.rule_id)))
                .get_result(conn)?;
            Ok(if taken {
                Err(Conflict::RuleExists)
            } else {
                Ok(())
            })
        }
        Change::RevokeRule {
            patient_key,
            rule_id,
        } => {
            let rule = rules::table
                .find(rule_id)
                .filter(rules::patient_key.eq(patient_key));
            let revoked = take_away!(conn, rule, rules::revoked_at, now)?;
            Ok(revoked.then_some(()).ok_or(Conflict::NoRule))
        }
    }
}

/// Makes the change the logged entries state.
fn apply_change(conn: &mut DbConnection, change: &Change, now: i64) -> Result<(), StoreError> {
    match change {
        Change::Enrol { device, .. } => {
            diesel::insert_into(devices::table)
                .values(device)
                .execute(conn)?;
        }
        // Done at reservation.
        Change::RemoveDevice { .. } | Change::RevokeRule { .. } => {}
        Change::Request { request, .. } => {
            diesel::insert_into(access_requests::table)
                .values(request)
                .execute(conn)?;
        }
        Change::Decide {
            request_id,
            status,
            grant,
        } => {
            diesel::update(access_requests::table.find(request_id))
                .set((
                    access_requests::status.eq(status),
                    access_requests::decided_at.eq(Some(now)),
                    access_requests::grant_id.eq(grant.as_ref().map(|g| g.grant_id)),
                ))
                .execute(conn)?;
        }
        // Issues only its grant, below.
        Change::Emergency { .. } => {}
        Change::RevokeGrant { grant_id, .. } => {
            diesel::update(grants::table.find(grant_id))
                .set(grants::revoked_at.eq(Some(now)))
                .execute(conn)?;
        }
        Change::AddRule { rule } => {
            diesel::insert_into(rules::table)
                .values(rule)
                .execute(conn)?;
        }
    }
    if let Some(grant) = change.grant() {
        diesel::insert_into(grants::table)
            .values(grant)
            .execute(conn)?;
    }
    Ok(())
}

/// Releases a reservation whose act the ledger refused.
fn release_change(conn: &mut DbConnection, change: &Change) -> Result<(), StoreError> {
    match change {
        Change::Enrol { code_hash, .. } => {
            let hash = hex::decode(code_hash).map_err(|e| StoreError::Encoding(e.to_string()))?;
            give_back!(
                conn,
                enrolment_codes::table.find(hash),
                enrolment_codes::used_at
            )?;
        }
        Change::RemoveDevice { device_id, .. } => {
            give_back!(conn, devices::table.find(device_id), devices::removed_at)?;
        }
        Change::RevokeRule { rule_id, .. } => {
            give_back!(conn, rules::table.find(rule_id), rules::revoked_at)?;
        }
        Change::Request { .. }
        | Change::Decide { .. }
        | Change::Emergency { .. }
        | Change::RevokeGrant { .. }
        | Change::AddRule { .. } => {}
    }
    Ok(())
}
