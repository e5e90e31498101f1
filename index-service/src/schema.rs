// The index's tables, the same in both dialects (see migrations/index-service/).

diesel::table! {
    pointers (pointer_id) {
        pointer_id -> Text,
        patient_key -> Text,
        custodian -> Text,
        sealed -> Binary,
        published_at -> BigInt,
        status -> Text,
        superseded_by -> Nullable<Text>,
    }
}

diesel::table! {
    pointer_tags (scope_tag, pointer_id) {
        scope_tag -> Text,
        pointer_id -> Text,
    }
}

diesel::joinable!(pointer_tags -> pointers (pointer_id));
diesel::allow_tables_to_appear_in_same_query!(pointers, pointer_tags);
