//! The connector's tables, the same in both dialects (see migrations/hospital-connector/).

diesel::table! {
    records (resource_type, resource_id, version) {
        resource_type -> Text,
        resource_id -> Text,
        version -> Integer,
        patient_key -> Text,
        categories -> Text,
        codes -> Text,
        effective_date -> Nullable<Text>,
        content -> Text,
        salt -> Binary,
        commitment -> Binary,
        imported_at -> BigInt,
        published_pointer -> Nullable<Text>,
        current -> Bool,
        withdrawn_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    received_results (id) {
        id -> Text,
        patient_key -> Text,
        custodian -> Text,
        pointer_id -> Text,
        resource_type -> Text,
        resource_id -> Text,
        version -> Integer,
        content -> Text,
        commitment -> Binary,
        provenance -> Text,
        receipt_index -> BigInt,
        received_at -> BigInt,
    }
}

diesel::table! {
    witnessed_checkpoint (id) {
        id -> Integer,
        tree_size -> BigInt,
        root -> Binary,
        updated_at -> BigInt,
        conflict -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(records, received_results, witnessed_checkpoint);
