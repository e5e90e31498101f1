// The ledger's tables, the same in both dialects (see migrations/ledger/).

diesel::table! {
    ledger_entries (idx) {
        idx -> BigInt,
        leaf_hash -> Binary,
        body -> Text,
        entry_type -> Text,
        submitter -> Text,
        subject -> Nullable<Text>,
        grant_id -> Nullable<Text>,
        entry_time -> BigInt,
        sequenced_at -> BigInt,
    }
}

diesel::table! {
    ledger_nodes (level, idx) {
        level -> SmallInt,
        idx -> BigInt,
        hash -> Binary,
    }
}

diesel::table! {
    ledger_checkpoints (tree_size) {
        tree_size -> BigInt,
        root -> Binary,
        note -> Text,
        signed_at -> BigInt,
    }
}

diesel::table! {
    ledger_cosignatures (tree_size, witness) {
        tree_size -> BigInt,
        witness -> Text,
        timestamp -> BigInt,
        signature_line -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    ledger_entries,
    ledger_nodes,
    ledger_checkpoints,
    ledger_cosignatures
);
