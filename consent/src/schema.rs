// The consent service's tables, the same in both dialects (see migrations/consent/).

diesel::table! {
    enrolment_codes (code_hash) {
        code_hash -> Binary,
        patient_key -> Text,
        issued_by -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    devices (device_id) {
        device_id -> Text,
        patient_key -> Text,
        public_jwk -> Text,
        enrolled_at -> BigInt,
        removed_at -> Nullable<BigInt>,
        code_issuer -> Text,
    }
}

diesel::table! {
    challenges (nonce) {
        nonce -> Text,
        device_id -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    access_requests (request_id) {
        request_id -> Text,
        patient_key -> Text,
        requester -> Text,
        terms -> Text,
        status -> Text,
        created_at -> BigInt,
        decided_at -> Nullable<BigInt>,
        grant_id -> Nullable<Text>,
    }
}

diesel::table! {
    grants (grant_id) {
        grant_id -> Text,
        patient_key -> Text,
        requester -> Text,
        basis -> Text,
        token -> Text,
        claims -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    rules (rule_id) {
        rule_id -> Text,
        patient_key -> Text,
        rule -> Text,
        signature -> Text,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::joinable!(challenges -> devices (device_id));
diesel::allow_tables_to_appear_in_same_query!(
    enrolment_codes,
    devices,
    challenges,
    access_requests,
    grants,
    rules
);

diesel::table! {
    pending_acts (act_key) {
        act_key -> Text,
        act -> Text,
        created_at -> BigInt,
    }
}
